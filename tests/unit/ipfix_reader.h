// SPDX-License-Identifier: BSD-3-Clause
// A small IPFIX reader for tests, written apart from the encoder: it learns templates from
// template sets and decodes data records field by field, so encoder bugs cannot cancel out.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace weir::test {

struct Record {
    uint32_t domain = 0;
    uint16_t template_id = 0;
    std::map<uint16_t, std::vector<uint8_t>> fields;                           // IANA element id -> raw bytes
    std::map<std::pair<uint32_t, uint16_t>, std::vector<uint8_t>> enterprise;  // (PEN, id) -> raw bytes

    uint64_t u(uint16_t ie) const {
        auto it = fields.find(ie);
        if (it == fields.end()) throw std::out_of_range("element " + std::to_string(ie) + " not in record");
        uint64_t v = 0;
        for (uint8_t b : it->second) v = v << 8 | b;
        return v;
    }
    std::vector<uint8_t> bytes(uint16_t ie) const { return fields.at(ie); }
    uint64_t u(uint32_t pen, uint16_t ie) const {
        auto it = enterprise.find({pen, ie});
        if (it == enterprise.end())
            throw std::out_of_range("element " + std::to_string(pen) + "/" + std::to_string(ie) + " not in record");
        uint64_t v = 0;
        for (uint8_t b : it->second) v = v << 8 | b;
        return v;
    }
    std::vector<uint8_t> bytes(uint32_t pen, uint16_t ie) const { return enterprise.at({pen, ie}); }
};

struct Message {
    uint16_t version = 0;
    uint16_t length = 0;
    uint32_t export_time = 0;
    uint32_t sequence = 0;
    uint32_t domain = 0;
    std::vector<Record> records;
    int template_count = 0;
};

class Reader {
public:
    // Parses one message; throws std::runtime_error on anything malformed.
    Message parse(const uint8_t* p, size_t n);

private:
    struct Field {
        uint32_t pen;  // 0: IANA
        uint16_t id, len;
    };
    std::map<std::pair<uint32_t, uint16_t>, std::vector<Field>> templates_;
};

}  // namespace weir::test
