// SPDX-License-Identifier: BSD-3-Clause
// The names operators ask for first, from the first payload bytes a client sends: the server
// name of a TLS ClientHello (SNI) and the Host header of an HTTP/1.x request. Plain bytes in, no
// allocation, every read bounded: called on workers and fuzzed.
#pragma once

#include <cstddef>
#include <cstdint>

namespace weir::inspect {

enum class NameKind : uint8_t { kNone = 0, kTlsSni = 1, kHttpHost = 2 };
const char* name_kind_name(NameKind k) noexcept;

struct FoundName {
    NameKind kind = NameKind::kNone;
    const uint8_t* data = nullptr;  // inside the payload given
    uint32_t len = 0;
};

// The TLS server name of a ClientHello that starts at p (a TLS record), as far as the n bytes
// hold it; kNone when p is not a ClientHello or the name lies beyond them.
FoundName tls_server_name(const uint8_t* p, size_t n) noexcept;
// The Host header of an HTTP/1.x request that starts at p (method, space, target, version),
// within the n bytes; leading and trailing blanks removed.
FoundName http_host(const uint8_t* p, size_t n) noexcept;
// Either of the two.
FoundName find_name(const uint8_t* p, size_t n) noexcept;

}  // namespace weir::inspect
