"""Which container holds which GPU: the kubelet's pod-resources API (v1 ``List``) over its unix socket.

The message classes are generated from ``podresources_v1.proto`` (see the
header of ``podresources_v1_pb2.py``); the one call is made through a plain
grpcio channel, its method path read from the proto's service descriptor, so
no generated gRPC stub module is needed. Every call has a deadline; a kubelet
that is down, restarting or slow gives :class:`KubeletUnavailable`, never a
hang of the sampling thread.

grpcio and protobuf come with the ``kubernetes`` extra (``pip install
wattfleet[kubernetes]``, and in the exporter image): a node outside
Kubernetes does not need them.
"""

from __future__ import annotations

import grpc

from wattfleet.exporter.workloads import podresources_v1_pb2 as pb
from wattfleet.exporter.workloads.devices import DeviceHolder, KubeletUnavailable

DEFAULT_SOCKET = "/var/lib/kubelet/pod-resources/kubelet.sock"
_SERVICE = pb.DESCRIPTOR.services_by_name["PodResourcesLister"]
LIST_METHOD = f"/{_SERVICE.full_name}/{_SERVICE.methods_by_name['List'].name}"
# A kubelet restart breaks the channel; grpc's default reconnect backoff grows to two minutes, which
# would keep the mapping stale long after the kubelet is back. Its answers are small (a few kB per pod).
_CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.min_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 5000),
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
]


class PodResourcesClient:
    """A channel to the kubelet's pod-resources socket; :meth:`list_devices` calls ``List`` once."""

    def __init__(self, socket_path: str = DEFAULT_SOCKET, timeout: float = 1.0) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        self._channel = grpc.insecure_channel(f"unix://{socket_path}", options=_CHANNEL_OPTIONS)
        self._list = self._channel.unary_unary(
            LIST_METHOD,
            request_serializer=pb.ListPodResourcesRequest.SerializeToString,
            response_deserializer=pb.ListPodResourcesResponse.FromString,
        )

    def list_pods(self) -> pb.ListPodResourcesResponse:
        try:
            response: pb.ListPodResourcesResponse = self._list(pb.ListPodResourcesRequest(), timeout=self.timeout)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            reason = "kubelet_timeout" if code == grpc.StatusCode.DEADLINE_EXCEEDED else "kubelet_unavailable"
            details = exc.details() if hasattr(exc, "details") else str(exc)
            raise KubeletUnavailable(reason, f"pod-resources List on {self.socket_path}: "
                                             f"{getattr(code, 'name', code)}: {details}") from None
        return response

    def list_devices(self) -> list[DeviceHolder]:
        """Every (container, resource, device id) the kubelet reports."""
        return devices_of(self.list_pods())

    def close(self) -> None:
        self._channel.close()


def devices_of(response: pb.ListPodResourcesResponse) -> list[DeviceHolder]:
    out = []
    for pod in response.pod_resources:
        for container in pod.containers:
            for devices in container.devices:
                for device_id in devices.device_ids:
                    out.append(DeviceHolder(pod.namespace, pod.name, container.name, devices.resource_name,
                                            device_id))
    return out
