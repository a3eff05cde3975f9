"""The merge rule for one machine seen by two RMM sources (trueup.domain.device_identity), by hand."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from trueup.domain.device_identity import MergedDevice, merged_across_sources, usable_identifier
from trueup.domain.models import Device, DeviceClass, DeviceState

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
