"""The typing/read throttle of one socket: pure, on given times."""

from __future__ import annotations

from kefu.domain.signals import SignalThrottle


def test_typing_goes_out_once_per_interval_per_chat_and_again_after_a_message() -> None:
    throttle = SignalThrottle(typing_interval_s=2.0)
    passed = [throttle.pass_typing("s1", 100.0 + i * 0.01) for i in range(150)]  # 1.5 s of a flood
    assert passed == [True] + [False] * 149
    assert throttle.pass_typing("s2", 100.5)  # another chat has its own interval
    assert throttle.pass_typing("s1", 102.0)
    throttle.message_sent("s1")
    assert throttle.pass_typing("s1", 102.1)


def test_a_read_goes_out_only_when_its_seq_moves_forward() -> None:
    throttle = SignalThrottle()
    assert throttle.pass_read("s1", 0)
    throttle.read_sent("s1", 3)
    assert not throttle.pass_read("s1", 3) and not throttle.pass_read("s1", 2)
    assert throttle.pass_read("s1", 4) and throttle.pass_read("s2", 1)
