/* onnx_internal.h — what the ONNX reader (onnx_read.c, onnx_wire.c) and
 * writer (onnx_write.c) share (not installed): the DataType numbers and
 * their mapping to torsh dtypes, the IR version that goes with an opset,
 * the wire-format diagnosis. */
#ifndef TORSH_ONNX_INTERNAL_H
#define TORSH_ONNX_INTERNAL_H

#include "torsh/onnx.h"

#include <stdint.h>

/* ONNX TensorProto.DataType values (FORMATS.md §2.1). */
enum {
    ONNX_UNDEFINED = 0, ONNX_FLOAT = 1, ONNX_UINT8 = 2, ONNX_INT8 = 3, ONNX_UINT16 = 4,
    ONNX_INT16 = 5, ONNX_INT32 = 6, ONNX_INT64 = 7, ONNX_STRING = 8, ONNX_BOOL = 9,
    ONNX_FLOAT16 = 10, ONNX_DOUBLE = 11, ONNX_UINT32 = 12, ONNX_UINT64 = 13,
    ONNX_COMPLEX64 = 14, ONNX_COMPLEX128 = 15, ONNX_BFLOAT16 = 16,
    ONNX_DTYPE_NAMES = 27,  /* names are known for 0 .. 26 */
};

/* ONNX AttributeProto.AttributeType values beyond those in ts_attr_type. */
enum { ONNX_ATTR_GRAPH = 5, ONNX_ATTR_TENSORS = 9, ONNX_ATTR_GRAPHS = 10, ONNX_ATTR_SPARSE_TENSOR = 11,
       ONNX_ATTR_SPARSE_TENSORS = 12, ONNX_ATTR_TYPE_PROTO = 13, ONNX_ATTR_TYPE_PROTOS = 14 };

/* The DataType name ("FLOAT", "STRING", "FLOAT8E4M3FN", ...) or "unknown". */
static inline const char *onnx_dtype_name(int32_t t)
{
    static const char *const names[ONNX_DTYPE_NAMES] = {
        "UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32", "INT64", "STRING",
        "BOOL", "FLOAT16", "DOUBLE", "UINT32", "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16",
        "FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "UINT4", "INT4",
        "FLOAT4E2M1", "FLOAT8E8M0", "UINT2", "INT2",
    };
    return t >= 0 && t < ONNX_DTYPE_NAMES ? names[t] : "unknown";
}

/* torsh dtype of an ONNX DataType; false when torsh has no such dtype. */
static inline bool onnx_to_ts_dtype(int32_t t, ts_dtype *out)
{
    switch (t) {
    case ONNX_FLOAT: *out = TS_F32; return true;
    case ONNX_DOUBLE: *out = TS_F64; return true;
    case ONNX_FLOAT16: *out = TS_F16; return true;
    case ONNX_BFLOAT16: *out = TS_BF16; return true;
    case ONNX_INT8: *out = TS_I8; return true;
    case ONNX_UINT8: *out = TS_U8; return true;
    case ONNX_INT16: *out = TS_I16; return true;
    case ONNX_INT32: *out = TS_I32; return true;
    case ONNX_INT64: *out = TS_I64; return true;
    case ONNX_BOOL: *out = TS_BOOL; return true;
    default: return false;
    }
}

static inline int32_t ts_to_onnx_dtype(ts_dtype dt)
{
    switch (dt) {
    case TS_F32: return ONNX_FLOAT;
    case TS_F64: return ONNX_DOUBLE;
    case TS_F16: return ONNX_FLOAT16;
    case TS_BF16: return ONNX_BFLOAT16;
    case TS_I8: return ONNX_INT8;
    case TS_U8: return ONNX_UINT8;
    case TS_I16: return ONNX_INT16;
    case TS_I32: return ONNX_INT32;
    case TS_I64: return ONNX_INT64;
    case TS_BOOL: return ONNX_BOOL;
    default: return ONNX_UNDEFINED;
    }
}

/* IR version written with a default-domain opset (docs/Versioning.md). */
static inline int64_t onnx_ir_for_opset(int64_t opset)
{
    return opset <= 18 ? 8 : opset <= 20 ? 9 : 10;
}

/* raw_data and external data are little-endian; torsh stores tensors in host
 * order and supports little-endian hosts only. */
static inline bool onnx_host_is_little_endian(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

/* Where a model protobuf-c refused breaks (onnx_wire.c): true with
 * "at byte N in graph.node[3]: ..." in msg, false when the wire format looks
 * well-formed (then protobuf-c objected to something else). */
bool onnx_wire_diagnose(const void *data, size_t len, char *msg, size_t cap);

/* Highest IR version the reader accepts (ONNX main defines 14). */
#define ONNX_MAX_IR_VERSION 14

#endif
