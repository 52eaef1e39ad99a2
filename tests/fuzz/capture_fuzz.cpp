// SPDX-License-Identifier: BSD-3-Clause
// The capture reader on arbitrary file bytes, against libpcap on the same bytes: it must not
// crash or read outside the file, must open what libpcap opens, and must hand out the same
// packets (bytes, lengths, times, link type) and stop where libpcap stops, but for the
// differences that stay on purpose (below).
#include <pcap/pcap.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "capture/reader.h"

namespace {
// libpcap 1.10 takes a pcap record's fraction as signed 32 bits too; the reader as unsigned.
uint64_t fraction_ns(const weir::capture::CaptureReader& r, long libpcap_ns) {
    if (r.pcapng()) return static_cast<uint64_t>(libpcap_ns);
    if (r.nanosecond()) return static_cast<uint32_t>(libpcap_ns);
    return static_cast<uint64_t>(static_cast<uint32_t>(libpcap_ns / 1000)) * 1000;
}

// libpcap 1.10 compares a later pcapng interface's link type, as written, with the first
// interface's after mapping it to a DLT: files with two interfaces of a link type whose number
// differs from its DLT (LINKTYPE_RAW 101, DLT_RAW 12) stop there. weir reads them; the harness
// compares up to that point.
bool libpcap_misreads_a_later_interface(pcap_t* p) {
    unsigned lt = 0;
    if (std::sscanf(pcap_geterr(p), "an interface has a type %u different from the type of the first interface", &lt) !=
        1)
        return false;
    return static_cast<int>(lt) != pcap_datalink(p) && weir::capture::linktype_to_dlt(lt) == pcap_datalink(p);
}

[[noreturn]] void differ(const char* what, uint64_t n) {
    std::fprintf(stderr, "capture_fuzz: packet %lu: %s\n", static_cast<unsigned long>(n), what);
    std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    // The reader gets its own copy of exactly `size` bytes, so ASan sees any read past the end.
    std::vector<uint8_t> bytes(data, data + size);
    FILE* f = fmemopen(const_cast<uint8_t*>(data), size, "rb");
    char err[PCAP_ERRBUF_SIZE] = {0};
    pcap_t* p = f ? pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_NANO, err) : nullptr;
    if (!p && f) std::fclose(f);
    try {
        weir::capture::CaptureReader r(bytes.data(), bytes.size());
        if (!p) differ("the reader opens what libpcap refuses", 0);
        if (r.linktype() != pcap_datalink(p)) differ("link type", 0);
        uint64_t n = 0;
        for (;; ++n) {
            pcap_pkthdr* h;
            const u_char* d;
            const int rc = pcap_next_ex(p, &h, &d);
            weir::capture::Packet k;
            const bool got = r.next(k);
            if (rc != 1) {
                if (rc == PCAP_ERROR && libpcap_misreads_a_later_interface(p)) break;
                if (got) differ("libpcap stops, the reader goes on", n);
                if ((rc == PCAP_ERROR) != !r.error().empty()) differ("one stops cleanly, the other on an error", n);
                break;
            }
            if (!got) differ("the reader stops, libpcap goes on", n);
            const uint64_t sec = r.pcapng() ? static_cast<uint64_t>(h->ts.tv_sec) : static_cast<uint32_t>(h->ts.tv_sec);
            // libpcap rewrites the pseudo-headers of Linux USB and NFLOG frames (byte order, and
            // the wire length of memory-mapped USB); weir does not decode those link types and
            // hands their bytes on as they are in the file.
            const int lt = pcap_datalink(p);
            const bool rewritten = lt == 189 || lt == 220 || lt == 239;
            if (k.caplen != h->caplen ||
                (!rewritten && (k.wirelen != h->len || std::memcmp(k.data, d, h->caplen) != 0)))
                differ("bytes or lengths", n);
            // libpcap's fraction of a binary resolution finer than 2^-34 s overflows 64 bits;
            // weir's is exact: only the seconds can be compared there.
            const bool overflows = r.time_units_pow2() && r.time_units() > (uint64_t{1} << 34);
            if (overflows ? k.ts_ns / 1'000'000'000ull != sec
                          : k.ts_ns != sec * 1'000'000'000ull + fraction_ns(r, h->ts.tv_usec))
                differ("time", n);
        }
    } catch (const std::runtime_error&) {
        if (p) differ("the reader refuses what libpcap opens", 0);
    }
    if (p) pcap_close(p);
    return 0;
}
