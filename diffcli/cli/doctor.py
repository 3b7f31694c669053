"""`diffcli doctor`: one screen of what the tool sees (versions, devices, registry, data, extras), and what
to do about each gap. The report comes from the doctor job (jobs/doctor.py); this module draws it."""

from __future__ import annotations

import sys
from typing import Any

from diffcli import console
from diffcli.cli import common, options


def doctor(json_output: options.Json = False) -> None:
    """Show versions, devices and free memory, the registry and its models, the data found, the
    optional extras installed, and what to do about each gap."""
    from diffcli.jobs.doctor import collect

    common.start(False, json_output)
    report = collect()
    if json_output:
        console.emit_json(report)
        return
    sys.stdout.write(render(report))
    sys.stdout.flush()


def render(report: dict[str, Any]) -> str:
    """The human-readable screen."""
    v = report["versions"]
    lines = [
        (
            f"diffcli {v['diffcli']}  python {v['python']}  torch {v['torch'] or 'MISSING'}  "
            f"torchvision {v['torchvision'] or 'MISSING'}  ({report['platform']})"
        )
    ]
    d = report["devices"]
    ram = f", {d['ram_gib']} GiB RAM" if d["ram_gib"] else ""
    lines.append(f"devices     cpu ({d['cpu_cores']} cores{ram})" + (", mps" if d["mps"] else ""))
    for gpu in d["cuda"]:
        lines.append(f"            cuda:{gpu['index']} {gpu['name']}: {gpu['free_gib']} of {gpu['total_gib']} GiB free")
    if not d["cuda"]:
        lines.append(
            f"            no CUDA GPU (torch built for CUDA {d['torch_cuda']})"
            if d["torch_cuda"]
            else "            no CUDA GPU (CPU-only torch)"
        )
    r = report["registry"]
    if r.get("error"):
        lines.append(f"registry    {r['error']}")
    else:
        lines.append(f"registry    {r['path']}" + ("" if r["exists"] else " (not created yet)"))
    for m in r["models"]:
        mark = "*" if m["name"] == r["default"] else " "
        extra = f"  {m['source']}" if m.get("source") else (f"  {m['error']}" if m.get("error") else "")
        lines.append(f"          {mark} {m['name']}  {m['kind']}{'  (built-in)' if m['builtin'] else ''}{extra}")
    for data in report["data"]:
        found = ", ".join(f"{k} ({p})" for k, p in data["datasets"].items()) or (
            "nothing found" if data["exists"] else "missing"
        )
        lines.append(f"data        {data['source']}: {data['path']}: {found}")
    for name, pkgs in report["extras"].items():
        lines.append(f"extra {name:<5} " + ", ".join(f"{p} {ver}" if ver else f"{p} -" for p, ver in pkgs.items()))
    hf = report["huggingface"]
    if hf["cache"]:
        lines.append(
            f"hf cache    {hf['cache']}"
            + (" (HF_HUB_OFFLINE set)" if hf["HF_HUB_OFFLINE"] not in (None, "", "0") else "")
        )
    if report["advice"]:
        lines.append("to do")
        lines.extend(f"  - {tip}" for tip in report["advice"])
    else:
        lines.append("all good")
    return "\n".join(lines) + "\n"
