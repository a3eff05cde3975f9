"""The merge rule for one machine seen by two RMM sources (trueup.domain.device_identity), by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.engine_builders import EDR, SYNCED, company, pax8, sub
from trueup.domain.device_identity import (
    MergedDevice,
    describe_merge,
    merged_across_sources,
    rows_across_sources,
    usable_identifier,
)
from trueup.domain.models import (
    Device,
    DeviceClass,
    DeviceState,
    ExclusionReason,
    Organization,
    RmmData,
    Settings,
)
from trueup.domain.reconcile import reconcile, tally_rmm
from trueup.domain.status import Status

SEEN = datetime(2026, 11, 30, tzinfo=UTC)
ROWS = {"ninjaone:1": "acme", "datto:s1": "acme", "ninjaone:2": "globex", "datto:s2": "globex"}


def device(
    device_id: str,
    organization: str,
    serial: str | None = None,
    hardware_id: str | None = None,
    name: str = "PC",
) -> Device:
    return Device(
        id=device_id,
        organization_id=organization,
        name=name,
        device_class=DeviceClass.WORKSTATION,
        last_seen=SEEN,
        state=DeviceState.ACTIVE,
        serial=serial,
        hardware_id=hardware_id,
    )


def merged(*devices: Device) -> list[MergedDevice]:
    return merged_across_sources(devices, lambda d: ROWS.get(d.organization_id))


def test_a_machine_in_both_tools_is_one_machine_by_its_serial() -> None:
    # Acme: ninja 10 and 11, datto 90 and 91. 11 and 90 are one laptop (its serial, written two ways).
    found = merged(
        device("ninjaone:10", "ninjaone:1", "AAA111"),
        device("ninjaone:11", "ninjaone:1", "5CG1234XYZ"),
        device("datto:90", "datto:s1", "5cg-1234xyz "),
        device("datto:91", "datto:s1", "BBB222"),
    )
    assert found == [MergedDevice("datto:90", "ninjaone:11", ("datto", "ninjaone"), "serial 5CG1234XYZ")]


def test_junk_serials_never_match() -> None:
    for junk in (
        "To be filled by O.E.M.",
        "Default string",
        "System Serial Number",
        "0",
        "None",
        "",
        "0000000",
    ):
        assert merged(device("ninjaone:10", "ninjaone:1", junk), device("datto:90", "datto:s1", junk)) == []


def test_a_serial_two_devices_of_one_source_share_never_matches() -> None:
    # Two cloned VMs in NinjaOne share a serial; Datto sees one of them (which one cannot be told).
    found = merged(
        device("ninjaone:10", "ninjaone:1", "VMWARE-42"),
        device("ninjaone:11", "ninjaone:1", "VMWARE-42"),
        device("datto:90", "datto:s1", "VMWARE-42"),
    )
    assert found == []


def test_a_serial_shared_in_another_row_of_the_same_source_still_spoils_it() -> None:
    # The clone lives in another client's organization: the serial is still no one machine's.
    found = merged(
        device("ninjaone:10", "ninjaone:1", "VMWARE-42"),
        device("ninjaone:20", "ninjaone:2", "VMWARE-42"),
        device("datto:90", "datto:s1", "VMWARE-42"),
    )
    assert found == []


def test_the_same_serial_in_two_clients_is_not_merged_across_rows() -> None:
    assert merged(device("ninjaone:10", "ninjaone:1", "SN1"), device("datto:95", "datto:s2", "SN1")) == []


def test_a_name_alone_never_matches() -> None:
    assert (
        merged(
            device("ninjaone:10", "ninjaone:1", name="RECEPTION-PC"),
            device("datto:90", "datto:s1", name="RECEPTION-PC"),
        )
        == []
    )


def test_a_hardware_id_matches_where_the_serial_is_junk() -> None:
    found = merged(
        device("ninjaone:10", "ninjaone:1", "Default string", "4C4C4544-0042"),
        device("datto:90", "datto:s1", None, "4c4c4544-0042"),
    )
    assert found == [
        MergedDevice("datto:90", "ninjaone:10", ("datto", "ninjaone"), "hardware id 4C4C45440042")
    ]


def test_a_group_linking_two_devices_of_one_source_is_not_merged() -> None:
    # ninja 10 shares a serial with datto 90, which shares a hardware id with ninja 11: not one machine.
    found = merged(
        device("ninjaone:10", "ninjaone:1", "SN1"),
        device("datto:90", "datto:s1", "SN1", "HW9"),
        device("ninjaone:11", "ninjaone:1", "SN2", "HW9"),
    )
    assert found == []


def test_devices_of_one_source_are_never_merged_with_each_other() -> None:
    # The same serial twice in one source is the clone case: nothing merged, both counted.
    assert (
        merged(device("ninjaone:10", "ninjaone:1", "SN1"), device("ninjaone:11", "ninjaone:1", "SN1")) == []
    )


@pytest.mark.parametrize(
    ("value", "usable"),
    [
        ("5CG1234XYZ", "5CG1234XYZ"),
        (" 5cg 1234-xyz ", "5CG1234XYZ"),
        ("To Be Filled By O.E.M.", None),
        ("xxxxxxxx", None),
        (None, None),
        ("N/A", None),
    ],
)
def test_usable_identifiers(value: str | None, usable: str | None) -> None:
    assert usable_identifier(value) == usable


def test_the_appearance_kept_is_the_first_by_preference() -> None:
    stale_first = merged_across_sources(
        [device("ninjaone:11", "ninjaone:1", "5CG1"), device("datto:90", "datto:s1", "5CG1")],
        lambda d: ROWS.get(d.organization_id),
        prefer=lambda d: d.id != "ninjaone:11",  # ninjaone:11 first, though datto sorts before it
    )
    assert stale_first == [MergedDevice("ninjaone:11", "datto:90", ("ninjaone", "datto"), "serial 5CG1")]


def test_a_merge_is_told_with_both_tools_and_the_identifier() -> None:
    pair = MergedDevice("ninjaone:11", "datto:90", ("ninjaone", "datto"), "serial 5CG1234XYZ")
    names = {"ninjaone": "NinjaOne", "datto": "Datto RMM"}
    assert describe_merge(pair, names) == "seen in NinjaOne and Datto RMM, serial 5CG1234XYZ"


def test_only_rows_whose_organizations_span_two_sources_are_looked_at() -> None:
    spanning = rows_across_sources(
        {"acme": ["ninjaone:1", "datto:s1"], "globex": ["ninjaone:2", "ninjaone:3"], "initech": []}
    )
    assert spanning == {"ninjaone:1": "acme", "datto:s1": "acme"}


# --- In the reconciliation: each worked out by hand ---------------------------------------------------

ACME_ORGS = [Organization(id="ninjaone:1", name="Acme"), Organization(id="datto:s1", name="Acme")]
ONLY_EDR = Settings(coverages=[EDR])


def seen(device_id: str, organization: str, serial: str | None, days_ago: float = 1) -> Device:
    return device(device_id, organization, serial).model_copy(
        update={"last_seen": SYNCED - timedelta(days=days_ago)}
    )


Row = tuple[int | None, int | None, int | None, Status, dict[ExclusionReason, int]]


def acme_row(devices: list[Device], licences: int) -> Row:
    data = RmmData(source="ninjaone+datto", organizations=ACME_ORGS, devices=devices, synced_at=SYNCED)
    result = reconcile(pax8([company("acme", "Acme")], [sub("s1", "acme", licences)]), data, ONLY_EDR)
    [row] = result.coverages[0].rows
    left_out = {reason: n for reason, n in row.excluded.items() if n}
    return row.devices, row.licenses, row.variance, row.status, left_out


def test_a_machine_in_both_tools_is_counted_once_in_its_row() -> None:
    # NinjaOne: 3 PCs (one is 5CG1); Datto: 2 PCs (one is 5CG1). 3 + 2 - 1 = 4 machines for 4 licences.
    devices = [
        seen("ninjaone:10", "ninjaone:1", "AAA1"),
        seen("ninjaone:11", "ninjaone:1", "5CG1"),
        seen("ninjaone:12", "ninjaone:1", None),
        seen("datto:90", "datto:s1", "5CG1"),
        seen("datto:91", "datto:s1", "BBB1"),
    ]
    assert acme_row(devices, 4) == (4, 4, 0, Status.MATCHED, {ExclusionReason.DUPLICATE: 1})


def test_the_appearance_that_counts_is_kept() -> None:
    # 5CG1 is stale in NinjaOne (seen 90 days ago) and seen yesterday in Datto: one machine, counted.
    # Without the merge: 2 counted (AAA1, datto's 5CG1) and 1 stale. With it: the stale one is the
    # duplicate, still 2 counted.
    devices = [
        seen("ninjaone:10", "ninjaone:1", "AAA1"),
        seen("ninjaone:11", "ninjaone:1", "5CG1", days_ago=90),
        seen("datto:90", "datto:s1", "5CG1"),
    ]
    assert acme_row(devices, 2) == (2, 2, 0, Status.MATCHED, {ExclusionReason.DUPLICATE: 1})


def test_a_junk_serial_in_both_tools_is_two_machines() -> None:
    devices = [
        seen("ninjaone:10", "ninjaone:1", "To be filled by O.E.M."),
        seen("datto:90", "datto:s1", "To be filled by O.E.M."),
    ]
    assert acme_row(devices, 1) == (2, 1, 1, Status.UNDER_LICENSED, {})


def test_a_serial_two_datto_devices_share_merges_nothing() -> None:
    # Two cloned VMs in Datto share VMW-1; NinjaOne also has VMW-1: no one machine is VMW-1. 3 counted.
    devices = [
        seen("ninjaone:10", "ninjaone:1", "VMW-1"),
        seen("datto:90", "datto:s1", "VMW-1"),
        seen("datto:91", "datto:s1", "VMW-1"),
    ]
    assert acme_row(devices, 3) == (3, 3, 0, Status.MATCHED, {})


def test_the_evidence_of_a_duplicate_says_where_else_it_was_seen() -> None:
    told: list[tuple[str, ExclusionReason | None, str | None]] = []
    records: list[Organization | Device] = [
        *ACME_ORGS,
        seen("ninjaone:11", "ninjaone:1", "5CG1234XYZ"),
        seen("datto:90", "datto:s1", "5cg1234xyz"),
    ]
    tallied = tally_rmm(
        "ninjaone+datto",
        records,
        {"ninjaone": SYNCED, "datto": SYNCED},
        30,
        each_device=lambda d, reason, matched, note: told.append((d.id, reason, note)),
        rows_across_sources={"ninjaone:1": "acme", "datto:s1": "acme"},
        source_names={"ninjaone": "NinjaOne", "datto": "Datto RMM"},
    )
    assert sorted(told) == [
        ("datto:90", None, None),
        (
            "ninjaone:11",
            ExclusionReason.DUPLICATE,
            "seen in Datto RMM and NinjaOne, serial 5CG1234XYZ",
        ),
    ]
    assert [(m.kept, m.duplicate) for m in tallied.merged] == [("datto:90", "ninjaone:11")]
