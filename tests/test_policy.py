"""The restart policy (training/policy.py) on its own: known answers, no processes, no clock."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from discrete_transformer.training.policy import PROBE, RESTART, Portfolio, ends_portfolio, time_limit


def _train(K: int = 4, side: int = 1, deadline: float | None = None, **kw) -> Portfolio:
    return Portfolio(K, side, deadline=deadline, **kw)


def _bench(K: int = 4, deadline: float | None = 100.0) -> Portfolio:
    return Portfolio(K, 2, deadline=deadline, probe=True)


def test_a_solved_first_restart_ends_the_portfolio() -> None:
    p = _train()
    assert p.next(0.0) == RESTART and p.start() == 0
    assert p.ended(1.0, ends=True)  # the first to end it: the driver stops the others
    assert p.solved and p.resolved and p.done
    assert p.next(1.0) is None and p.started == 1


def test_without_stop_on_solved_every_restart_runs() -> None:
    p = _train(K=2, stop_on_solved=False)
    for i in range(2):
        assert p.next(float(i)) == RESTART and p.start() == i
        assert not p.ended(1.0, ends=True)
    assert p.finished == 2 and not p.solved and p.done


def test_only_the_first_restart_to_end_the_portfolio_stops_the_others() -> None:
    p = _train(K=2, side=2)
    p.start(), p.start()
    assert p.ended(1.0, ends=True) and not p.ended(2.0, ends=True)


def test_a_later_restart_starts_only_if_one_as_long_as_the_longest_ends_by_the_deadline() -> None:
    p = _train(K=4, deadline=10.0)
    p.start()
    p.ended(4.0, ends=False)
    assert p.next(4.0) == RESTART  # 4 + 4 <= 10
    p.start()
    p.ended(3.0, ends=False)  # the longest stays 4
    assert p.next(7.0) is None  # 7 + 4 > 10: it would overrun the budget
    assert p.closed and p.resolved and p.done and p.started == 2
    assert p.next(0.0) is None  # closed for good


def test_the_first_side_by_side_restarts_start_whatever_the_budget() -> None:
    p = _train(K=3, side=2, deadline=1.0)
    assert p.next(5.0) == RESTART and p.start() == 0
    assert p.next(5.0) == RESTART and p.start() == 1  # past the deadline: it runs under what is left
    assert p.next(5.0) is None and not p.closed  # two run: the third waits
    p.ended(4.0, ends=False)
    assert p.next(5.0) is None and p.closed


def test_at_most_side_by_side_restarts_run_at_once() -> None:
    p = _train(K=5, side=2)
    assert [p.next(0.0), p.start(), p.next(0.0), p.start(), p.next(0.0)] == [RESTART, 0, RESTART, 1, None]
    p.ended(1.0, ends=False)
    assert p.next(1.0) == RESTART and p.start() == 2
    assert p.next(1.0) is None and p.running == 2


def test_no_budget_runs_the_whole_portfolio_in_order() -> None:
    p = _train(K=3)
    order = []
    while p.next(1e9) == RESTART:
        order.append(p.start())
        p.ended(1e6, ends=False)
    assert order == [0, 1, 2] and p.done and not p.closed


def test_the_bench_probes_before_the_first_fallback_once_the_first_two_ended() -> None:
    p = _bench()
    p.start(), p.start()
    assert p.next(1.0) is None  # no fallback beside the first two
    p.ended(10.0, ends=False)
    assert p.next(10.0) is None  # the probe waits for restart 1 too
    p.ended(10.0, ends=False)
    assert p.next(10.0) == PROBE
    p.start_probe()
    assert p.next(11.0) is None  # the fallback waits for the probe
    assert not p.probe_ended(verified=False, now=20.0)  # 20 + 10 <= 100: a fallback fits
    assert p.next(20.0) == RESTART and p.start() == 2
    assert p.next(20.0) == RESTART and p.start() == 3  # the fallbacks run side by side
    assert p.started == 4


def test_a_verified_probe_resolves_the_portfolio_and_is_the_extraction() -> None:
    p = _bench()
    p.start(), p.start()
    p.ended(5.0, ends=False), p.ended(5.0, ends=False)
    assert p.next(5.0) == PROBE
    p.start_probe()
    assert p.probe_ended(verified=True, now=6.0)
    assert p.resolved and p.done and p.next(6.0) is None and p.started == 2


def test_no_probe_when_no_fallback_would_fit() -> None:
    p = _bench(deadline=15.0)
    p.start(), p.start()
    p.ended(10.0, ends=False), p.ended(10.0, ends=False)
    assert p.next(10.0) is None  # 10 + 10 > 15
    assert p.closed and p.done and not p.probe_started


def test_a_probe_after_which_no_fallback_fits_closes_the_portfolio() -> None:
    p = _bench(deadline=25.0)
    p.start(), p.start()
    p.ended(10.0, ends=False), p.ended(10.0, ends=False)
    assert p.next(10.0) == PROBE  # 10 + 10 <= 25
    p.start_probe()
    assert p.probe_ended(verified=False, now=20.0)  # 20 + 10 > 25: the probe is the extraction
    assert p.closed and p.next(20.0) is None


def test_the_first_fallback_is_judged_when_the_probe_ends_later_ones_as_they_start() -> None:
    p = _bench(deadline=30.0)
    p.start(), p.start()
    p.ended(10.0, ends=False), p.ended(10.0, ends=False)
    p.next(10.0), p.start_probe()
    p.probe_ended(verified=False, now=20.0)  # 20 + 10 <= 30
    assert p.next(21.0) == RESTART and p.start() == 2  # not judged again
    assert p.next(21.0) is None and p.closed  # restart 3: 21 + 10 > 30


def test_a_solved_first_restart_means_no_probe_and_no_fallback() -> None:
    p = _bench()
    p.start(), p.start()
    p.ended(1.0, ends=True)
    assert p.next(1.0) is None and p.resolved and not p.done  # restart 1 still runs
    p.ended(3.0, ends=False)
    assert p.done and not p.probe_started


def test_ends_portfolio_uses_the_verification_tolerance() -> None:
    assert ends_portfolio("continuous", {"exact": 0.0, "nmse": 5e-7})  # not solved at 1e-7, but enough
    assert not ends_portfolio("continuous", {"exact": 1.0, "nmse": 2e-6})
    assert ends_portfolio("continuous", {"exact": 0.0, "nmse": 2e-6}, continuous_tol=1e-5)  # looser target
    assert ends_portfolio("discrete", {"exact": 1.0, "nmse": 0.5})
    assert not ends_portfolio("discrete", {"exact": 0.999, "nmse": 0.0})


def test_time_limit_is_what_is_left_of_the_budget() -> None:
    assert time_limit(None, None, 5.0) is None and time_limit(7.0, None, 5.0) == 7.0
    assert time_limit(None, 10.0, 4.0) == 6.0 and time_limit(3.0, 10.0, 4.0) == 3.0
    assert time_limit(None, 10.0, 12.0) == 1e-3  # past the deadline: a restart that ends at once


def test_side_by_side_must_be_positive() -> None:
    with pytest.raises(ValueError, match="side_by_side"):
        Portfolio(2, 0)


@settings(max_examples=200, deadline=None)
@given(
    K=st.integers(1, 6),
    side=st.integers(1, 3),
    probe=st.booleans(),
    budget=st.one_of(st.none(), st.floats(1.0, 50.0)),
    events=st.lists(st.tuples(st.floats(0.5, 20.0), st.booleans(), st.booleans()), min_size=1, max_size=30),
)
def test_invariants_of_any_run(K, side, probe, budget, events) -> None:
    """Whatever the restarts' lengths and outcomes: never more than `side` at once, never more
    than K, in order, nothing after the portfolio is resolved, and every run ends resolved."""
    p = Portfolio(K, side, deadline=budget, probe=probe)
    now, running, probe_running = 0.0, [], False
    for i in range(100):
        while (step := p.next(now)) is not None:
            assert not p.resolved
            if step == PROBE:
                assert probe and not running and not probe_running
                p.start_probe()
                probe_running = True
                break
            assert p.start() == len(running) + p.finished
            running.append(now)
            assert p.running == len(running) <= side and p.started <= K
        if not running and not probe_running:
            break
        seconds, ends, verified = events[i % len(events)]
        now += seconds
        if probe_running:
            probe_running = False
            p.probe_ended(verified, now)
        else:
            running.pop()
            p.ended(seconds, ends)
    assert p.done and p.resolved
