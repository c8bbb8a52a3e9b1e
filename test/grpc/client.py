"""Calls inference.GRPCInferenceService through a client generated from the protocol's official
.proto (grpc_tools.protoc), as a user of the protocol would. Reads a plan from stdin: a JSON list
of {"rpc", "request" (the message in protobuf's JSON form), "timeout" (seconds, optional),
"repeat" (optional)}; prints one JSON list of results: the response as a dict with raw outputs
decoded by the datatypes the response gives, or the gRPC status of the failure; "ms" per call.

    python client.py GENERATED_DIR HOST:PORT < plan.json
"""
import json
import struct
import sys
import time

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
from google.protobuf import json_format  # noqa: E402
import kserve_grpc_predict_v2_pb2 as pb  # noqa: E402
import kserve_grpc_predict_v2_pb2_grpc as pb_grpc  # noqa: E402


def decode(datatype, raw):
    """Raw tensor bytes as the protocol lays them out: little-endian, BYTES with 4-byte lengths."""
    if datatype == "FP32":
        return list(struct.unpack("<%df" % (len(raw) // 4), raw))
    if datatype == "INT32":
        return list(struct.unpack("<%di" % (len(raw) // 4), raw))
    if datatype == "UINT8":
        return list(raw)
    if datatype == "BYTES":
        out, at = [], 0
        while at < len(raw):
            (length,) = struct.unpack_from("<I", raw, at)
            out.append(raw[at + 4:at + 4 + length].decode("utf-8"))
            at += 4 + length
        return out
    raise ValueError("unexpected datatype " + datatype)


def answer(response):
    result = json_format.MessageToDict(response, preserving_proto_field_name=True)
    if isinstance(response, pb.ModelInferResponse):
        result.pop("raw_output_contents", None)
        for output, raw in zip(result.get("outputs", []), response.raw_output_contents):
            output["data"] = decode(output["datatype"], raw)
            output["shape"] = [int(d) for d in output.get("shape", [])]
        for value in result.get("parameters", {}).values():
            if "int64_param" in value:
                value["int64_param"] = int(value["int64_param"])
    if isinstance(response, pb.ModelMetadataResponse):
        for tensor in result.get("inputs", []) + result.get("outputs", []):
            tensor["shape"] = [int(d) for d in tensor["shape"]]
    return result


def main():
    channel = grpc.insecure_channel(sys.argv[2], options=[("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)])
    stub = pb_grpc.GRPCInferenceServiceStub(channel)
    results = []
    for call in json.load(sys.stdin):
        rpc = call["rpc"]
        request = json_format.ParseDict(call.get("request", {}), getattr(pb, rpc + "Request")())
        times = []
        for _ in range(call.get("repeat", 1)):
            started = time.perf_counter()
            try:
                response = getattr(stub, rpc)(request, timeout=call.get("timeout", 30))
                result = {"ok": answer(response)}
            except grpc.RpcError as err:
                result = {"code": err.code().name, "details": err.details(), "trailers": {k: v for k, v in (err.trailing_metadata() or [])}}
            times.append(1000 * (time.perf_counter() - started))
        result["ms"] = times
        results.append(result)
    print(json.dumps(results))


main()
