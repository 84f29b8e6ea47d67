"""`asset-studio servers check URL…`: what each ComfyUI server is and whether it can run a job."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "servers",
        help="check ComfyUI servers for the comfyui engine",
        description="Ask ComfyUI servers for their version, devices, the nodes Asset Studio needs and models.",
    )
    sub = p.add_subparsers(dest="servers_command", metavar="ACTION", required=True)
    check = sub.add_parser("check", help="print each server's version, devices, missing nodes and models",
                           description="Print each server's version, devices, the nodes Asset Studio needs that "
                                       "it lacks, and which of a job's models it has. Exits 1 when a server cannot "
                                       "be reached or cannot run the job.")
    check.add_argument("urls", nargs="+", metavar="URL", help="http(s)://HOST:PORT")
    check.add_argument("--job", metavar="IMAGE.png|JOB.json",
                       help="an image made by Asset Studio (or a job file): check its nodes and models")
    check.add_argument("--model", action="append", default=[], metavar="FILE",
                       help="a checkpoint file name to look for (repeatable)")
    check.add_argument("--timeout", type=float, default=10.0, metavar="S", help="seconds to wait for each server")
    check.set_defaults(func=run_check)


def load_job(path: str):
    from asset_studio.core.job import GenerationJob
    from asset_studio.core.library import read_job
    from asset_studio.errors import UserError

    file = Path(path)
    if not file.is_file():
        raise UserError(f"The job {path} is not a file.")
    if file.suffix.lower() == ".json":
        if file.stat().st_size > 4 * 2**20:
            raise UserError(f"The job {path} is larger than 4 MB; it is not a job file.")
        return GenerationJob.from_json(file.read_text(encoding="utf-8", errors="replace"))
    return read_job(file)


def report(info, job, models: list[str]) -> tuple[list[str], bool]:
    """The lines printed for one server, and whether it can run what was asked."""
    from asset_studio.remote.graph import STUDIO_NODES, file_name, models_of, nodes_of, unsupported

    lines = [f"  version: ComfyUI {info.version}", f"  devices: {', '.join(info.devices) or 'none reported'}"]
    wanted = nodes_of(job, info.files_for(job)) if job is not None and not unsupported(job) else STUDIO_NODES
    missing_nodes = sorted(wanted - info.nodes)
    lines.append(f"  missing nodes: {', '.join(missing_nodes) if missing_nodes else 'none'}")
    ok = not missing_nodes
    refs = (models_of(job) if job is not None else []) + [("checkpoint", m) for m in models]
    for kind, ref in refs:
        found = info.find_model(kind, ref)
        lines.append(f"  {kind} {file_name(ref)}: " + (f"yes ({found})" if found else "MISSING"))
        ok = ok and found is not None
    if not refs:
        lines.append(f"  checkpoints: {len(info.models.get('checkpoint', []))}, LoRAs: {len(info.models.get('LoRA', []))}, "
                     f"ControlNets: {len(info.models.get('ControlNet', []))}")
    return lines, ok


def run_check(args: argparse.Namespace) -> int:
    import os

    from asset_studio.remote.client import ComfyClient, ServerError
    from asset_studio.remote.graph import unsupported
    from asset_studio.service import TOKEN_VARIABLE

    job = load_job(args.job) if args.job else None
    if job is not None and unsupported(job):
        print(f"note: {unsupported(job)}", file=sys.stderr)
    all_ok = True
    for url in args.urls:
        client = ComfyClient(url, token=os.environ.get(TOKEN_VARIABLE) or None, timeout=args.timeout)
        print(client.url)
        try:
            info = client.info()
        except ServerError as exc:
            print(f"  unreachable: {exc}")
            all_ok = False
            continue
        lines, ok = report(info, job, args.model)
        print("\n".join(lines))
        all_ok = all_ok and ok
    return 0 if all_ok else 1
