"""The pod-resources client against the fake kubelet: real gRPC over a unix socket in a temporary directory."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from wattfleet.exporter.workloads.devices import DeviceHolder, KubeletUnavailable
from wattfleet.exporter.workloads.kubelet import LIST_METHOD, PodResourcesClient
from wattfleet.sim.fake_kubelet import FakeContainer, FakeKubelet, FakePod, gpu_pod


def test_list_method_path_comes_from_the_proto() -> None:
    assert LIST_METHOD == "/v1.PodResourcesLister/List"


def test_list_reports_every_container_device(socket_dir: Path) -> None:
    pods = [gpu_pod("ml", "train-0", ["GPU-a", "GPU-b"]),
            FakePod("web", "api-7d9f", [FakeContainer("app", {"nvidia.com/gpu": ["GPU-c::1"]}),
                                        FakeContainer("sidecar", {"example.com/nic": ["nic0"]})])]
    with FakeKubelet(socket_dir / "kubelet.sock", pods):
        client = PodResourcesClient(str(socket_dir / "kubelet.sock"), timeout=2.0)
        try:
            got = client.list_devices()
        finally:
            client.close()
    assert got == [DeviceHolder("ml", "train-0", "main", "nvidia.com/gpu", "GPU-a"),
                   DeviceHolder("ml", "train-0", "main", "nvidia.com/gpu", "GPU-b"),
                   DeviceHolder("web", "api-7d9f", "app", "nvidia.com/gpu", "GPU-c::1"),
                   DeviceHolder("web", "api-7d9f", "sidecar", "example.com/nic", "nic0")]


def test_kubelet_down_is_an_error_with_a_reason_and_a_restart_is_picked_up(socket_dir: Path) -> None:
    path = socket_dir / "kubelet.sock"
    client = PodResourcesClient(str(path), timeout=0.5)
    try:
        with pytest.raises(KubeletUnavailable) as info:
            client.list_devices()      # nothing listens yet
        assert info.value.reason == "kubelet_unavailable"
        assert str(path) in str(info.value)
        kubelet = FakeKubelet(path, [gpu_pod("a", "p", ["GPU-a"])]).start()
        try:
            deadline = time.monotonic() + 10
            while True:   # the channel reconnects within its (shortened) backoff
                try:
                    assert len(client.list_devices()) == 1
                    break
                except KubeletUnavailable:
                    assert time.monotonic() < deadline, "client never reconnected"
                    time.sleep(0.1)
            kubelet.stop()
            with pytest.raises(KubeletUnavailable):
                client.list_devices()
            kubelet.set_pods([])
            kubelet.start()        # a restart re-creates the socket
            deadline = time.monotonic() + 10
            while True:
                try:
                    assert client.list_devices() == []
                    break
                except KubeletUnavailable:
                    assert time.monotonic() < deadline, "client never reconnected after the restart"
                    time.sleep(0.1)
        finally:
            kubelet.stop()
    finally:
        client.close()


def test_a_slow_kubelet_hits_the_deadline(socket_dir: Path) -> None:
    with FakeKubelet(socket_dir / "kubelet.sock", [gpu_pod("a", "p", ["GPU-a"])]) as kubelet:
        client = PodResourcesClient(str(socket_dir / "kubelet.sock"), timeout=0.2)
        try:
            assert len(client.list_devices()) == 1
            kubelet.delay = 1.0
            started = time.monotonic()
            with pytest.raises(KubeletUnavailable) as info:
                client.list_devices()
            assert info.value.reason == "kubelet_timeout"
            assert time.monotonic() - started < 0.9   # bounded by the deadline, not the kubelet
        finally:
            kubelet.delay = 0.0
            client.close()
