"""The op table (model/ops.py) speaks the classifier's vocabulary: every role it names is a known one."""

from __future__ import annotations

from onnxaudit.count.vocabulary import ROLES
from onnxaudit.model.ops import DATA, MATMUL_QUANT_SLOTS, MS_SLOT_TABLE, SLOT_NAMES, SLOT_TABLE


def test_every_slot_role_is_a_known_role():
    named = {role for table in (SLOT_TABLE, MS_SLOT_TABLE) for roles in table.values() for role in roles}
    named |= {role for slots in MATMUL_QUANT_SLOTS.values() for role in slots.values()}
    assert named - {DATA} <= set(ROLES), sorted(named - {DATA} - set(ROLES))


def test_slot_names_cover_the_slots_the_role_table_gives():
    # a name for each slot the role table lists, where both know the op (the spec's input count)
    short = {op: (len(names), len(SLOT_TABLE[op])) for op, names in SLOT_NAMES.items() if op in SLOT_TABLE}
    assert {op: n for op, n in short.items() if n[0] != n[1]} == {}
