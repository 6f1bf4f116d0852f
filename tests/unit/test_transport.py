"""The commit guard of pipeline.transport: no commit past a message no agent acked."""

from pipeline.transport import unread_hole


def test_acks_from_the_next_offset_leave_no_hole():
    assert unread_hole(5, [5, 6, 7], []) is None
    assert unread_hole(0, [0, 1], []) is None


def test_acks_starting_past_the_next_offset_are_a_hole_at_it():
    assert unread_hole(5, [6, 7], []) == 5  # one message: Faust's own check lets this through
    assert unread_hole(0, [3, 4], []) == 0  # before the first commit, from the first offset


def test_a_known_gap_at_the_head_is_no_hole():
    assert unread_hole(5, [8, 9], [5]) is None


def test_nothing_acked_or_no_known_position_is_no_hole():
    assert unread_hole(5, [], []) is None
    assert unread_hole(None, [3, 4], []) is None


def test_acks_below_the_next_offset_are_no_hole():
    assert unread_hole(5, [4, 5, 6], []) is None
