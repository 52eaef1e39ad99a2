// SPDX-License-Identifier: BSD-3-Clause
// Network byte order on the wire: the one writer IPFIX data and options records, their
// templates and NetFlow v9/v5 packets are written with. Each returns the position after what it
// wrote; the caller has checked the room.
#pragma once

#include <cstdint>
#include <cstring>

namespace weir::wire {

inline uint8_t* put8(uint8_t* p, uint8_t v) noexcept {
    *p = v;
    return p + 1;
}
// A byte swap and an unaligned store each: what the encoder's hot loop compiles to.
inline uint8_t* put16(uint8_t* p, uint16_t v) noexcept {
    v = __builtin_bswap16(v);
    std::memcpy(p, &v, 2);
    return p + 2;
}
inline uint8_t* put32(uint8_t* p, uint32_t v) noexcept {
    v = __builtin_bswap32(v);
    std::memcpy(p, &v, 4);
    return p + 4;
}
inline uint8_t* put64(uint8_t* p, uint64_t v) noexcept {
    v = __builtin_bswap64(v);
    std::memcpy(p, &v, 8);
    return p + 8;
}

}  // namespace weir::wire
