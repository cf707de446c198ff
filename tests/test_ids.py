"""check_same_ids: one check that two objects list the same stimuli in the same order."""

import pytest

from neurobench.data.stimuli import StimulusSet
from neurobench.errors import AlignmentError
from neurobench.ids import check_same_ids


def test_identical_lists_pass_and_ids_compare_as_strings():
    check_same_ids(["a", "b"], ["a", "b"])
    check_same_ids([1, 2, 3], ["1", "2", "3"])


def test_another_order_names_the_first_difference():
    with pytest.raises(AlignmentError) as info:
        check_same_ids(["a", "b", "c", "d"], ["a", "b", "d", "c"], "activations", "responses")
    msg = str(info.value)
    assert "different order" in msg and "position 2" in msg
    assert "'c' in activations" in msg and "'d' in responses" in msg and "reorder responses by stimulus id" in msg


def test_different_stimuli_lists_what_each_side_lacks():
    with pytest.raises(AlignmentError) as info:
        check_same_ids(["a", "b", "c"], ["a", "b", "x", "y"], "model RDMs", "data RDMs", hint="use one stimulus set")
    msg = str(info.value)
    assert "different stimuli" in msg and "3 vs 4 ids" in msg
    assert "1 only in model RDMs, e.g. ['c']" in msg and "2 only in data RDMs, e.g. ['x', 'y']" in msg
    assert msg.endswith("use one stimulus set")


def test_repeated_ids_are_named():
    with pytest.raises(AlignmentError, match=r"1 repeated in the other, e\.g\. \['a'\]"):
        check_same_ids(["a", "b"], ["a", "b", "a"])
    with pytest.raises(AlignmentError, match="repeated in the reference"):
        check_same_ids(["a", "a", "b"], ["a", "b", "a"])


def test_stimulus_set_delegates():
    s = StimulusSet("toy", ["a", "b", "c"], texts=["1", "2", "3"])
    s.check_aligned(["a", "b", "c"])
    with pytest.raises(AlignmentError, match="stimulus set 'toy' and toy data hold the same stimuli"):
        s.check_aligned(["c", "b", "a"], what="toy data")
