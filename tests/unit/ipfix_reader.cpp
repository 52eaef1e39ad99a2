// SPDX-License-Identifier: BSD-3-Clause
#include "ipfix_reader.h"

namespace weir::test {
namespace {
uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t be32(const uint8_t* p) { return static_cast<uint32_t>(be16(p)) << 16 | be16(p + 2); }
void need(bool ok, const char* what) {
    if (!ok) throw std::runtime_error(what);
}
}  // namespace

Message Reader::parse(const uint8_t* p, size_t n) {
    need(n >= 16, "short message header");
    Message m;
    m.version = be16(p);
    m.length = be16(p + 2);
    m.export_time = be32(p + 4);
    m.sequence = be32(p + 8);
    m.domain = be32(p + 12);
    need(m.version == 10, "version is not 10");
    need(m.length == n, "length field differs from datagram size");
    size_t off = 16;
    while (off < n) {
        need(off + 4 <= n, "short set header");
        const uint16_t set_id = be16(p + off);
        const uint16_t set_len = be16(p + off + 2);
        need(set_len >= 4 && off + set_len <= n, "bad set length");
        const uint8_t* s = p + off + 4;
        const size_t slen = set_len - 4u;
        if (set_id == 2) {
            size_t o = 0;
            while (o + 4 <= slen) {
                const uint16_t tid = be16(s + o);
                const uint16_t count = be16(s + o + 2);
                o += 4;
                std::vector<Field> fields;
                for (uint16_t i = 0; i < count; ++i) {
                    need(o + 4 <= slen, "short template field");
                    const uint16_t id = be16(s + o);
                    const uint16_t len = be16(s + o + 2);
                    o += 4;
                    uint32_t pen = 0;
                    if (id & 0x8000) {  // enterprise bit: the enterprise number follows
                        need(o + 4 <= slen, "short enterprise number");
                        pen = be32(s + o);
                        need(pen != 0, "enterprise number 0");
                        o += 4;
                    }
                    need(len != 0xFFFF, "variable length not expected");
                    fields.push_back({pen, static_cast<uint16_t>(id & 0x7FFF), len});
                }
                templates_[{m.domain, tid}] = fields;
                ++m.template_count;
            }
        } else if (set_id >= 256) {
            auto it = templates_.find({m.domain, set_id});
            need(it != templates_.end(), "data set before its template");
            size_t rec_len = 0;
            for (auto& f : it->second) rec_len += f.len;
            size_t o = 0;
            while (o + rec_len <= slen) {
                Record r;
                r.domain = m.domain;
                r.template_id = set_id;
                for (auto& f : it->second) {
                    std::vector<uint8_t> v(s + o, s + o + f.len);
                    if (f.pen)
                        r.enterprise[{f.pen, f.id}] = std::move(v);
                    else
                        r.fields[f.id] = std::move(v);
                    o += f.len;
                }
                m.records.push_back(std::move(r));
            }
            need(slen - o < 4, "padding of 4 bytes or more at the end of a data set");
        } else {
            need(false, "unexpected set id");
        }
        off += set_len;
    }
    return m;
}

}  // namespace weir::test
