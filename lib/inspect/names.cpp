// SPDX-License-Identifier: BSD-3-Clause
#include "inspect/names.h"

#include <cstring>

namespace weir::inspect {
namespace {

inline uint32_t be16(const uint8_t* p) noexcept { return static_cast<uint32_t>(p[0]) << 8 | p[1]; }
inline uint32_t be24(const uint8_t* p) noexcept { return static_cast<uint32_t>(p[0]) << 16 | be16(p + 1); }

// A name worth keeping: printable ASCII without blanks.
bool printable(const uint8_t* p, uint32_t n) noexcept {
    if (n == 0) return false;
    for (uint32_t i = 0; i < n; ++i)
        if (p[i] <= 0x20 || p[i] >= 0x7F) return false;
    return true;
}

inline uint8_t lower(uint8_t c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<uint8_t>(c + 32) : c; }

}  // namespace

const char* name_kind_name(NameKind k) noexcept {
    switch (k) {
        case NameKind::kTlsSni: return "tls_sni";
        case NameKind::kHttpHost: return "http_host";
        case NameKind::kNone: break;
    }
    return "";
}

FoundName tls_server_name(const uint8_t* p, size_t n) noexcept {
    FoundName none;
    // Record header: handshake (22), version 3.x, length; then the handshake header: ClientHello.
    if (n < 9 || p[0] != 0x16 || p[1] != 0x03 || p[5] != 0x01) return none;
    const size_t rec_end = 5 + be16(p + 3);
    const size_t end = rec_end < n ? rec_end : n;
    const size_t hs_end = 9 + static_cast<size_t>(be24(p + 6));
    const size_t lim = hs_end < end ? hs_end : end;
    size_t pos = 9 + 2 + 32;  // client version, random
    if (pos + 1 > lim) return none;
    pos += 1 + p[pos];  // session id
    if (pos + 2 > lim) return none;
    pos += 2 + be16(p + pos);  // cipher suites
    if (pos + 1 > lim) return none;
    pos += 1 + p[pos];  // compression methods
    if (pos + 2 > lim) return none;
    const size_t ext_end_decl = pos + 2 + be16(p + pos);
    const size_t ext_end = ext_end_decl < lim ? ext_end_decl : lim;
    pos += 2;
    while (pos + 4 <= ext_end) {
        const uint32_t type = be16(p + pos);
        const uint32_t len = be16(p + pos + 2);
        pos += 4;
        if (type == 0) {  // server_name: list length, then entries of type, length, name
            if (pos + 2 > ext_end) return none;
            size_t q = pos + 2;
            const size_t list_end = pos + 2 + be16(p + pos) < pos + len ? pos + 2 + be16(p + pos) : pos + len;
            while (q + 3 <= list_end && q + 3 <= ext_end) {
                const uint8_t nt = p[q];
                const uint32_t nl = be16(p + q + 1);
                q += 3;
                if (q + nl > ext_end) return none;
                if (nt == 0 && printable(p + q, nl)) return FoundName{NameKind::kTlsSni, p + q, nl};
                q += nl;
            }
            return none;
        }
        pos += len;
    }
    return none;
}

FoundName http_host(const uint8_t* p, size_t n) noexcept {
    FoundName none;
    static const char* const kMethods[] = {"GET ",       "POST ",    "HEAD ",      "PUT ",    "DELETE ",
                                           "OPTIONS ",   "CONNECT ", "PATCH ",     "TRACE ",  "PROPFIND ",
                                           "PROPPATCH ", "MKCOL ",   "COPY ",      "MOVE ",   "LOCK ",
                                           "UNLOCK ",    "SEARCH ",  "SUBSCRIBE ", "NOTIFY ", "M-SEARCH "};
    bool request = false;
    for (const char* m : kMethods) {
        const size_t ml = std::strlen(m);
        if (n >= ml && std::memcmp(p, m, ml) == 0) {
            request = true;
            break;
        }
    }
    if (!request) return none;
    // Header lines follow the request line; the headers end at an empty line.
    size_t pos = 0;
    while (pos < n && p[pos] != '\n') ++pos;
    while (++pos < n) {
        const size_t line = pos;
        while (pos < n && p[pos] != '\n') ++pos;
        if (pos >= n) return none;  // the line goes on past what was captured
        size_t e = pos;
        if (e > line && p[e - 1] == '\r') --e;
        if (e == line) return none;  // end of the headers
        if (e - line >= 5 && lower(p[line]) == 'h' && lower(p[line + 1]) == 'o' && lower(p[line + 2]) == 's' &&
            lower(p[line + 3]) == 't' && p[line + 4] == ':') {
            size_t v = line + 5;
            while (v < e && (p[v] == ' ' || p[v] == '\t')) ++v;
            size_t ve = e;
            while (ve > v && (p[ve - 1] == ' ' || p[ve - 1] == '\t')) --ve;
            if (ve > v && printable(p + v, static_cast<uint32_t>(ve - v)))
                return FoundName{NameKind::kHttpHost, p + v, static_cast<uint32_t>(ve - v)};
            return none;
        }
    }
    return none;
}

FoundName find_name(const uint8_t* p, size_t n) noexcept {
    if (n && p[0] == 0x16) return tls_server_name(p, n);
    return http_host(p, n);
}

}  // namespace weir::inspect
