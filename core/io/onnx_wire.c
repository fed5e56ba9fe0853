/* onnx_wire.c — why protobuf-c refused a model file: a walk over the
 * protobuf wire format guided by the same message descriptors
 * (core/proto/onnx.proto) that finds the first byte where the file breaks
 * (a length past the end, a varint cut short, a wire type that does not fit
 * the field) and the path of the field it falls in, for the importer's
 * message ("at byte 2619 in graph.initializer[2]: field 9 (raw_data) claims
 * 1280 bytes, only 60 remain (truncated file?)"). A message field that runs
 * past the end is walked as far as it goes, so the innermost field of a cut
 * is named. The depth is bounded: no message in onnx.proto contains itself. */
#include "onnx_internal.h"
#include "onnx.pb-c.h"

#include <stdio.h>
#include <string.h>

typedef struct wire_err { size_t offset; char what[256]; char path[256]; } wire_err;

static bool read_varint(const uint8_t *p, size_t end, size_t *pos, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (*pos >= end) return false;
        uint8_t b = p[(*pos)++];
        if (shift == 63 && b > 1) return false;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) { *v = x; return true; }
    }
    return false;
}

static int wire_type_of(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_DOUBLE: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_SFIXED64: return 1;
    case PROTOBUF_C_TYPE_FLOAT: case PROTOBUF_C_TYPE_FIXED32: case PROTOBUF_C_TYPE_SFIXED32: return 5;
    case PROTOBUF_C_TYPE_STRING: case PROTOBUF_C_TYPE_BYTES: case PROTOBUF_C_TYPE_MESSAGE: return 2;
    default: return 0;
    }
}

/* Walks the message `d` in p[start, end); false with *e filled at the first
 * thing protobuf-c would refuse. Depth is bounded by onnx.proto (no message
 * there contains itself). */
static bool wire_walk(const uint8_t *p, size_t start, size_t end, const ProtobufCMessageDescriptor *d,
                      const char *path, wire_err *e)
{
    unsigned counts[64] = { 0 };
    size_t pos = start;
    while (pos < end) {
        size_t at = pos;
        uint64_t tag, v;
        snprintf(e->path, sizeof e->path, "%s", path);
        e->offset = at;
        if (!read_varint(p, end, &pos, &tag)) {
            snprintf(e->what, sizeof e->what, "a field tag runs past the end of %s", *path ? "its message" : "the file");
            return false;
        }
        uint32_t id = (uint32_t)(tag >> 3);
        int wt = (int)(tag & 7);
        if (id == 0 || tag >> 3 > 0x1fffffff) {
            snprintf(e->what, sizeof e->what, "invalid field number %llu", (unsigned long long)(tag >> 3));
            return false;
        }
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(d, id);
        char fname[96];
        if (f) snprintf(fname, sizeof fname, "field %u (%s)", id, f->name);
        else snprintf(fname, sizeof fname, "field %u", id);
        if (f && wt != wire_type_of(f) && !(wt == 2 && f->label == PROTOBUF_C_LABEL_REPEATED && wire_type_of(f) != 2)) {
            snprintf(e->what, sizeof e->what, "%s has wire type %d, expected %d", fname, wt, wire_type_of(f));
            return false;
        }
        switch (wt) {
        case 0:
            if (!read_varint(p, end, &pos, &v)) {
                snprintf(e->what, sizeof e->what, "%s: varint runs past the end (truncated file?)", fname);
                return false;
            }
            break;
        case 1: case 5: {
            size_t need = wt == 1 ? 8 : 4;
            if (end - pos < need) {
                snprintf(e->what, sizeof e->what, "%s needs %zu bytes, only %zu remain (truncated file?)", fname, need, end - pos);
                return false;
            }
            pos += need;
            break;
        }
        case 2: {
            if (!read_varint(p, end, &pos, &v)) {
                snprintf(e->what, sizeof e->what, "%s: length runs past the end (truncated file?)", fname);
                return false;
            }
            bool overrun = v > end - pos;
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                /* an overrunning message is walked as far as it goes, to
                 * name the innermost field the cut falls in */
                char sub[256];
                unsigned idx = 0;
                size_t fi = (size_t)(f - d->fields);
                if (fi < 64) idx = counts[fi]++;
                if (f->label == PROTOBUF_C_LABEL_REPEATED)
                    snprintf(sub, sizeof sub, "%s%s%s[%u]", path, *path ? "." : "", f->name, idx);
                else
                    snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", f->name);
                if (!wire_walk(p, pos, overrun ? end : pos + (size_t)v, f->descriptor, sub, e)) return false;
                snprintf(e->path, sizeof e->path, "%s", path);
                e->offset = at;
            }
            if (overrun) {
                snprintf(e->what, sizeof e->what, "%s claims %llu bytes, only %zu remain (truncated file?)", fname,
                         (unsigned long long)v, end - pos);
                return false;
            }
            pos += (size_t)v;
            break;
        }
        default:
            snprintf(e->what, sizeof e->what, "%s has wire type %d, which ONNX never uses", fname, wt);
            return false;
        }
    }
    return true;
}

bool onnx_wire_diagnose(const void *data, size_t len, char *msg, size_t cap)
{
    wire_err e;
    memset(&e, 0, sizeof e);
    if (wire_walk(data, 0, len, &onnx__model_proto__descriptor, "", &e)) return false;
    snprintf(msg, cap, "at byte %zu%s%s: %s", e.offset, *e.path ? " in " : "", e.path, e.what);
    return true;
}
