"""``v2a weights list | fetch | verify``: the sub-command ``flows/cli.py`` hands over to."""

from __future__ import annotations

import argparse

from v2a.weights.cache import cache_dir, status
from v2a.weights.download import WeightsError
from v2a.models.profile_weights import profile_entries, profile_refs
from v2a.weights.fetch import fetch_command, fetch_entry, offline, verify_entry
from v2a.weights.registry import Entry, get_entry, registry

DEFAULT_FETCH_PROFILE = "paper"


def add_parser(sub) -> None:
    import argparse

    text = "list, fetch and verify the checkpoints profiles name (the weights registry)"
    p = sub.add_parser("weights", help=text, description=text, epilog="example:\n  v2a weights fetch --profile paper",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    wsub = p.add_subparsers(dest="weights_command", required=True)
    helps = {
        "list": "each entry: present / missing / partial / corrupt / unverified, sizes, the field it fills",
        "fetch": f"download into the weights cache, resumable and checksum-verified "
                 f"(default: what --profile {DEFAULT_FETCH_PROFILE} uses)",
        "verify": "read every cached file and compare it with its checksum",
    }
    for name, text in helps.items():
        s = wsub.add_parser(name, help=text, description=text)
        s.add_argument("entries", nargs="*", metavar="ENTRY", help="registry entry names (default: see --profile)")
        s.add_argument("--profile", help="the entries this profile (name, NAME:VARIANT or YAML path) uses")
        if name == "fetch":
            s.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def _selected(args) -> list[Entry]:
    if args.entries and args.profile:
        raise ValueError("give ENTRY names or --profile, not both")
    if args.entries:
        return [get_entry(n) for n in args.entries]
    profile = args.profile or (DEFAULT_FETCH_PROFILE if args.weights_command == "fetch" else None)
    if profile:
        return profile_entries(profile)
    return list(registry().values())


def _mb(n) -> str:
    if n is None:
        return "?"
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n} B"


def _size(st) -> str:
    if st.state == "present" or st.expected is None or st.size == st.expected:
        return _mb(st.size if st.size is not None else st.expected)
    return f"{_mb(st.size)} of {_mb(st.expected)}" if st.size is not None else f"({_mb(st.expected)})"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def _report(statuses, fills: dict[str, str]) -> str:
    rows = [["ENTRY", "STATE", "SIZE", "FILLS", "SOURCE", "LICENCE"]]
    for st in statuses:
        e = st.entry
        rows.append([e.name, st.state, _size(st), fills.get(e.name, ", ".join(e.fills)), e.where, e.licence])
    lines = [_table(rows)]
    lines += [f"  {st.entry.name}: {st.detail}" for st in statuses if st.detail and st.state != "present"]
    return "\n".join(lines)


def cmd_list(args) -> None:
    entries = _selected(args)
    fills = {}
    if args.profile:
        others = []
        for field, value, entry in profile_refs(args.profile):
            if entry is not None:
                fills[entry.name] = ", ".join(x for x in (fills.get(entry.name), field) if x)
            else:
                others.append(f"  {field} = {value!r} (not a registry entry: a local path, hub id or tag)")
    print(f"weights cache: {cache_dir()}  (V2A_WEIGHTS_DIR moves it)")
    statuses = [status(e) for e in entries]
    print(_report(statuses, fills))
    if args.profile and others:
        print("other checkpoint fields of the profile:\n" + "\n".join(others))
    todo = [st.entry.name for st in statuses if st.state not in ("present", "unverified")]
    if todo:
        print(f"to fetch: {fetch_command(profile=args.profile) if args.profile else fetch_command(todo)}")


def cmd_fetch(args) -> None:
    entries = _selected(args)
    if offline():
        raise WeightsError("offline mode is on (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE / V2A_OFFLINE): "
                           "unset it to fetch")
    print(f"weights cache: {cache_dir()}")
    for entry in entries:
        st = fetch_entry(entry, progress=not args.no_progress)
        print(f"{entry.name}: {st.state}, {_mb(st.size)} → {st.path}")


def cmd_verify(args) -> None:
    statuses = [verify_entry(e) for e in _selected(args)]
    print(_report(statuses, {}))
    bad = [st.entry.name for st in statuses if st.state == "corrupt"]
    if bad:
        raise WeightsError(f"{len(bad)} entr{'y' if len(bad) == 1 else 'ies'} corrupt ({', '.join(bad)}): "
                           f"`{fetch_command(bad)}` downloads them again")


def run(args: argparse.Namespace) -> None:
    {"list": cmd_list, "fetch": cmd_fetch, "verify": cmd_verify}[args.weights_command](args)
