"""The benchmark's arithmetic and its report: minimum upstream requests, ideal times, the printed table.

Everything here is pure: the numbers in, a JSON-ready dict or the text out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

REQUESTS_TARGET = 1.05  # upstream requests at most this many times the minimum
MEMORY_TARGET_MB = 512  # what one Lambda invocation can afford at 1,000,000 devices
SNAPSHOT_CPU_TARGET_S = 2.0  # for a 2,000-client snapshot
STEPS = (
    ("pax8_sync", "Pax8 sync"),
    ("rmm_sync", "RMM sync"),
    ("suggestions", "Suggestions"),
    ("snapshot", "Snapshot"),
)
DEFAULT_SIZE = (2000, 50)  # clients, devices per client: the 2,000 clients and ~100,000 devices


@dataclass(frozen=True)
class VendorList:
    """One paged list a sync reads: where, how many records the server holds, how many a page holds."""

    name: str
    path: str  # as the demo server counts it: the request path
    records: int
    page_size: int  # what the server actually serves per page
    ends_with_empty_page: bool  # NinjaOne pages "until an empty page"; Pax8 says how many pages there are

    @property
    def minimum_pages(self) -> int:
        """Pages the protocol needs: Pax8 reads page 0 even when empty; NinjaOne also reads the empty page.

        A NinjaOne client cannot stop at a short page: the server may serve fewer records than asked
        for (its cap), so only an empty page says the list is over.
        """
        full = math.ceil(self.records / self.page_size)
        return full + 1 if self.ends_with_empty_page else max(1, full)


def upstream_requests(
    lists: list[VendorList], token_path: str, stats: Mapping[str, Any], *, tokens_needed: int = 1
) -> dict[str, Any]:
    """Requests one demo server saw (its `/_demo/stats` entry) against the minimum for `lists`."""
    by_path: Mapping[str, int] = stats.get("by_path", {})
    total = int(stats.get("requests", 0))
    token = int(by_path.get(f"POST {token_path}", 0))
    per_list = {
        item.name: {
            "records": item.records,
            "page_size": item.page_size,
            "actual": int(by_path.get(f"GET {item.path}", 0)),
            "minimum": item.minimum_pages,
        }
        for item in lists
    }
    minimum = tokens_needed + sum(item.minimum_pages for item in lists)
    accounted = token + sum(entry["actual"] for entry in per_list.values())
    ratio = total / minimum if minimum else math.inf
    return {
        "actual": total,
        "minimum": minimum,
        "ratio": round(ratio, 3),
        "within_target": ratio <= REQUESTS_TARGET,
        "token": {"actual": token, "minimum": tokens_needed},
        "lists": per_list,
        "other": total - accounted,  # anything else the sync asked for (should be 0)
        "by_status": dict(stats.get("by_status", {})),
    }


def concurrent_list_ideal(pages: int, concurrency: int, latency: float) -> float:
    """The issue's yardstick for a Pax8 list: pages / concurrency x latency."""
    return pages / concurrency * latency


def concurrent_list_floor(pages: int, concurrency: int, latency: float) -> float:
    """The least time this client's schedule allows for a list.

    Page 0 goes alone (it says how many pages there are), then the rest in rounds of `concurrency`.
    """
    return (1 + math.ceil(max(0, pages - 1) / concurrency)) * latency


def mb(kib: int | float) -> float:
    return round(kib / 1024, 1)


# --- the report -------------------------------------------------------------------------------------


def _n(value: int) -> str:
    return f"{value:,}"


def _bytes(value: int) -> str:
    if value >= 1024 * 1024:
        return f"{value / 1024 / 1024:.1f} MB"
    return f"{value / 1024:.1f} KB"


def _calls(calls: Mapping[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in calls.items()) or "none"


def _met(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def _rmm_lines(figures: Mapping[str, Any], latency_ms: float) -> list[str]:
    """Each RMM adapter read whole at the benchmark's size: requests against the minimum, wall time."""
    lines = [
        f"Each RMM read whole ({latency_ms:.0f} ms per request)              requests   minimum     wall"
    ]
    for entry in figures["rmm_adapters"].values():
        what = (
            f"{entry['name']} ({_n(entry['organizations'])} orgs, {_n(entry['devices'])} devices, "
            f"pages of {_n(entry['page_size'])})"
        )
        lines.append(
            f"  {what:<52} {entry['requests']:>7}   {entry['minimum']:>7}   {entry['wall_s']:6.1f} s"
        )
    lines.append(
        "  (minimum: 1 token + ceil(records / page size) pages per list; NinjaOne adds its roles and the "
        "final empty page of each list; Datto RMM's last page says it is the last)"
    )
    return lines


def _evidence_lines(figures: Mapping[str, Any]) -> list[str]:
    size = figures["size"]
    sizes = [(f"{_n(size['clients'])} clients, {_n(size['devices'])} devices", figures["snapshot_evidence"])]
    scale = figures.get("snapshot_at_scale")
    if scale:
        sizes.append((f"{_n(scale['clients'])} clients, {_n(scale['devices'])} devices (made up)", scale))
    lines = []
    for label, measured in sizes:
        on, off = measured["on"], measured["off"]
        lines.append(f"  {label}")
        for name, figure in (("evidence on ", on), ("evidence off", off)):
            lines.append(
                f"    {name}  CPU {figure['cpu_s']:7.2f} s   wall {figure['wall_s']:7.2f} s   "
                f"peak {figure['peak_mb']:7.1f} MB"
            )
    return lines


def render(figures: Mapping[str, Any]) -> str:
    """The human-readable report (the JSON line carries the same numbers)."""
    size = figures["size"]
    latency_ms = figures["latency_s"] * 1000
    pages = figures["page_sizes"]
    lines = [
        f"trueup benchmark: {_n(size['clients'])} clients, {_n(size['devices'])} devices, "
        f"{_n(size['subscriptions'])} subscriptions "
        f"({size['devices_per_client']} devices per generated client)",
        f"Demo upstreams with {latency_ms:.0f} ms added to every request; pages served: Pax8 "
        f"{pages['pax8']} records, NinjaOne {pages['ninjaone']} (client asks {pages['ninjaone_requested']}, "
        f"server cap {pages['ninjaone_cap']})",
        "",
        "Upstream requests                     actual   minimum   ratio",
    ]
    for source, label in (("pax8", "Pax8"), ("ninjaone", "NinjaOne")):
        entry = figures["upstream_requests"][source]
        flag = "" if entry["within_target"] else f"   > {REQUESTS_TARGET}x"
        lines.append(
            f"  {label:<34} {entry['actual']:>7}   {entry['minimum']:>7}   {entry['ratio']:.2f}x{flag}"
        )
        lines.append(f"    {'token':<32} {entry['token']['actual']:>7}   {entry['token']['minimum']:>7}")
        for name, item in entry["lists"].items():
            what = f"{name} ({_n(item['records'])} records)"
            lines.append(f"    {what:<32} {item['actual']:>7}   {item['minimum']:>7}")
        if entry["other"]:
            lines.append(f"    {'other requests':<32} {entry['other']:>7}         0")
    lines.append(
        "  (minimum: 1 token + ceil(records / page size) pages per list; NinjaOne adds the final empty page)"
    )

    syncs = figures["syncs"]
    pax8, rmm = syncs["pax8"], syncs["rmm"]
    lines += [
        "",
        f"Sync wall time ({latency_ms:.0f} ms upstream latency)",
        f"  Pax8 sync   {pax8['wall_s']:7.2f} s   of which listing {pax8['lists_s']:.2f} s; "
        f"pages / {pax8['concurrency']} x latency = {pax8['ideal_s']:.2f} s "
        f"(floor: token, first pages, then rounds of {pax8['concurrency']}: {pax8['floor_s']:.2f} s)",
    ]
    for name, item in pax8["lists"].items():
        lines.append(f"    {name:<19} {item['pages']:>4} pages {item['wall_s']:6.2f} s   (the lists overlap)")
    lines.append(
        f"  RMM sync    {rmm['wall_s']:7.2f} s   pages one after another: {rmm['pages']} x latency = "
        f"{rmm['ideal_s']:.2f} s"
    )
    suggestions = figures["suggestions"]
    lines.append(
        f"  Suggestions {suggestions['wall_s']:7.2f} s   after the sync: "
        f"{_n(suggestions['organizations'] or 0)} organizations no company's name matches, each "
        "compared with every company"
    )
    for label, step in (("Pax8 sync", pax8), ("RMM sync", rmm), ("Suggestions", suggestions)):
        if step["wall_s"] > step["limit_s"]:
            lines.append(f"  {label} took longer than its function's Timeout ({step['limit_s']} s)")

    lines += ["", "Peak memory (RSS of the process)      peak   after import   function memory"]
    for step, label in STEPS:
        memory = figures["memory_mb"][step]
        lines.append(
            f"  {label:<30} {memory['peak']:7.1f} MB   {memory['after_import']:7.1f} MB   "
            f"{memory['function_memory_mb']} MB"
        )

    snapshot = figures["snapshot"]
    overran = snapshot["wall_s"] > snapshot["limit_s"]
    lines += [
        "",
        f"Snapshot: CPU {snapshot['cpu_s']:.2f} s (user {snapshot['cpu_user_s']:.2f} + system "
        f"{snapshot['cpu_sys_s']:.2f}), wall {snapshot['wall_s']:.2f} s; {snapshot['coverages']} coverages, "
        f"{_n(snapshot['rows'])} rows; response {_bytes(snapshot['response_bytes'])} "
        f"({snapshot['response_encoding']})"
        + (f"; longer than its Timeout ({snapshot['limit_s']} s)" if overran else ""),
        "",
        "Snapshot with each row's evidence, and without (POST /snapshots; CPU, wall, peak memory)",
        *_evidence_lines(figures),
        "",
        *_rmm_lines(figures, latency_ms),
        "",
        "AWS requests (API calls, by operation)",
    ]
    for step, label in STEPS:
        calls = figures["aws_requests"][step]
        lines.append(f"  {label:<10} {calls['total']:>4}   {_calls(calls['by_operation'])}")
    lines.append("  (counted in each step's process at Endpoint.make_request; retries not counted)")

    lines += [
        "",
        "API answers (each in a function that has read nothing yet, the call alone; bytes as sent:",
        "POST asked for gzip, the reads did not)",
    ]
    for read in figures["api"]:
        lines.append(f"  {read['label']:<44} {read['wall_s']:7.3f} s   {_bytes(read['bytes'])}")

    stored = figures["stored_bytes"]
    lines += [
        "",
        f"Stored in S3: Pax8 generation {_bytes(stored['pax8_generation'])}, RMM generation "
        f"{_bytes(stored['rmm_generation'])}, snapshot {_bytes(stored['snapshot'])} (all gzip)",
        "",
        "Targets (printed, never asserted)",
    ]
    targets = figures["targets"]
    lines.append(
        f"  every API answer within Lambda's 6 MB (largest {_bytes(targets['largest_api_response_bytes'])}): "
        f"{_met(targets['api_responses_within_6_mb'])}"
    )
    lines.append(
        f"  upstream requests <= {REQUESTS_TARGET}x the minimum: {_met(targets['requests_within_1_05x'])}"
    )
    if targets["pax8_list_vs_ideal"] is None:
        lines.append("  Pax8 listing vs pages / concurrency x latency: no latency injected, no comparison")
    else:
        lines.append(
            f"  Pax8 listing vs pages / concurrency x latency: {targets['pax8_list_vs_ideal']:.2f}x "
            f"(vs this client's floor {targets['pax8_list_vs_floor']:.2f}x)"
        )
    lines.append(
        f"  peak memory within {MEMORY_TARGET_MB} MB (largest step {targets['largest_peak_mb']:.1f} MB): "
        f"{_met(targets['memory_within_512_mb'])}"
    )
    snapshot_note = ""
    if (size["clients"], size["devices_per_client"]) != DEFAULT_SIZE:
        snapshot_note = " (the target is for the default size: 2,000 clients, ~100,000 devices)"
    lines.append(
        f"  snapshot CPU under {SNAPSHOT_CPU_TARGET_S:.0f} s: {_met(targets['snapshot_cpu_under_2_s'])}"
        + snapshot_note
    )
    cycle = figures["cycle"]
    lines += [
        "",
        f"Monthly cycle: {cycle['schedule_to_notification_s']:.1f} s from the schedule firing to the "
        f"notification ({latency_ms:.0f} ms upstream latency; each step a cold start; EventBridge's own "
        "delivery time not included)",
    ]
    for item in cycle["steps"]:
        lines.append(
            f"  +{item['start_s']:6.1f} s  {item['function']:<17} {item['wall_s']:6.2f} s   {item['what']}"
        )
    lines.append(f"  told: {cycle['subject']}")
    lines += ["", f"Benchmark took {figures['benchmark_s']:.0f} s (data set, processes and all)."]
    return "\n".join(lines)
