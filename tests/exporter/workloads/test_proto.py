"""The committed pod-resources gencode describes the committed .proto (regenerated here with grpcio-tools)."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from paths import REPO

HERE = REPO / "exporter" / "workloads"


def serialized_descriptor(pb2: Path) -> bytes:
    """The FileDescriptorProto bytes protoc embeds in a _pb2.py (AddSerializedFile's argument)."""
    for node in ast.walk(ast.parse(pb2.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "AddSerializedFile":
            arg = node.args[0]
            assert isinstance(arg, ast.Constant) and isinstance(arg.value, bytes)
            return arg.value
    raise AssertionError(f"{pb2}: no AddSerializedFile call")


def test_gencode_matches_the_proto(tmp_path: Path) -> None:
    protoc = pytest.importorskip("grpc_tools.protoc", reason="grpcio-tools (test extra) regenerates the gencode")
    shutil.copy(HERE / "podresources_v1.proto", tmp_path)
    include = str(Path(protoc.__file__).parent / "_proto")
    rc = protoc.main(["protoc", f"-I{tmp_path}", f"-I{include}", f"--python_out={tmp_path}",
                      f"--pyi_out={tmp_path}", str(tmp_path / "podresources_v1.proto")])
    assert rc == 0
    assert serialized_descriptor(tmp_path / "podresources_v1_pb2.py") == \
        serialized_descriptor(HERE / "podresources_v1_pb2.py"), "regenerate: see the header of podresources_v1_pb2.py"


def test_gencode_says_how_it_was_made() -> None:
    for name in ("podresources_v1_pb2.py", "podresources_v1_pb2.pyi"):
        head = (HERE / name).read_text().splitlines()[:4]
        assert "grpcio-tools" in head[0] and "grpc_tools.protoc" in head[1], name


def test_the_proto_names_its_upstream_source() -> None:
    text = (HERE / "podresources_v1.proto").read_text()
    assert "kubernetes/kubelet" in text and "pkg/apis/podresources/v1/api.proto" in text and "v0.36.3" in text


def test_the_wire_names_are_kubernetes_own() -> None:
    from wattfleet.exporter.workloads import podresources_v1_pb2 as pb  # lazy: needs the kubernetes extra

    service = pb.DESCRIPTOR.services_by_name["PodResourcesLister"]
    assert service.full_name == "v1.PodResourcesLister"
    assert sorted(service.methods_by_name) == ["Get", "GetAllocatableResources", "List"]
    fields = {f.name: f.number for f in pb.ContainerDevices.DESCRIPTOR.fields}
    assert fields == {"resource_name": 1, "device_ids": 2, "topology": 3}
    fields = {f.name: f.number for f in pb.PodResources.DESCRIPTOR.fields}
    assert fields == {"name": 1, "namespace": 2, "containers": 3}
