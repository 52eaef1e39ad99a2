// SPDX-License-Identifier: BSD-3-Clause
// The capture reader against libpcap: for every capture (the bundled ones, and the whole corpus
// in WEIR_PCAPS when set) the same packets, bytes, lengths, times and link type, and the same
// place to stop on a damaged file. Plus hand-made files for what the corpus lacks.
#include <pcap/pcap.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "capture/pcapng.h"
#include "capture/reader.h"

namespace fs = std::filesystem;
using weir::capture::CaptureReader;
using weir::capture::Packet;

namespace {

// How the reader gets the file: mapped, or read in pieces (of 4 KiB, so that records and blocks
// straddle many, or of the default size).
enum class Way { kMapped, kSmallPieces, kPieces };

std::unique_ptr<CaptureReader> open_reader(const std::string& path, Way way) {
    if (way == Way::kMapped) return std::make_unique<CaptureReader>(path);
    if (way == Way::kSmallPieces) return std::make_unique<CaptureReader>(path, CaptureReader::Streamed{}, 4096);
    return std::make_unique<CaptureReader>(path, CaptureReader::Streamed{});
}

// Compares the reader with libpcap on one file; "" when they agree, else what differs.
std::string compare_way(const std::string& path, Way way, uint64_t* packets) {
    char err[PCAP_ERRBUF_SIZE] = {0};
    pcap_t* p = pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, err);
    std::string why;
    try {
        const auto reader = open_reader(path, way);
        CaptureReader& r = *reader;
        if (!p) return "libpcap refuses (" + std::string(err) + ") but the reader opens it";
        if (r.linktype() != pcap_datalink(p))
            why = "link type " + std::to_string(r.linktype()) + " vs " + std::to_string(pcap_datalink(p));
        uint64_t n = 0;
        for (;;) {
            pcap_pkthdr* h;
            const u_char* d;
            const int rc = pcap_next_ex(p, &h, &d);
            Packet k;
            const bool got = r.next(k);
            if (rc != 1) {
                if (got)
                    why = "packet " + std::to_string(n) + ": libpcap stops, the reader goes on";
                else if ((rc == PCAP_ERROR) != !r.error().empty())
                    why = "at the end: libpcap " + std::string(rc == PCAP_ERROR ? pcap_geterr(p) : "clean") +
                        ", reader " + (r.error().empty() ? "clean" : r.error());
                break;
            }
            if (!got) {
                why = "packet " + std::to_string(n) + ": the reader stops (" + r.error() + "), libpcap goes on";
                break;
            }
            // The reader takes a pcap record's seconds and fraction as unsigned, as the format
            // says (libpcap 1.10 sign-extends them: times after 2038 would go back to 1901).
            const uint64_t sec = r.pcapng() ? static_cast<uint64_t>(h->ts.tv_sec) : static_cast<uint32_t>(h->ts.tv_sec);
            const uint64_t frac = r.pcapng() ? static_cast<uint64_t>(h->ts.tv_usec)
                : r.nanosecond()             ? static_cast<uint32_t>(h->ts.tv_usec)
                                 : static_cast<uint64_t>(static_cast<uint32_t>(h->ts.tv_usec / 1000)) * 1000;
            const uint64_t ts = sec * 1'000'000'000ull + frac;
            if (k.caplen != h->caplen || k.wirelen != h->len || k.ts_ns != ts ||
                std::memcmp(k.data, d, h->caplen) != 0) {
                why = "packet " + std::to_string(n) + " differs: caplen " + std::to_string(k.caplen) + "/" +
                    std::to_string(h->caplen) + " len " + std::to_string(k.wirelen) + "/" + std::to_string(h->len) +
                    " ts " + std::to_string(k.ts_ns) + "/" + std::to_string(ts);
                break;
            }
            ++n;
        }
        if (packets) *packets = n;
        // Rewind reads the same again.
        if (why.empty()) {
            r.rewind();
            Packet k;
            uint64_t again = 0;
            while (r.next(k)) ++again;
            if (again != n) why = "rewind: " + std::to_string(again) + " packets, first pass " + std::to_string(n);
        }
    } catch (const std::exception& e) {
        if (p) why = std::string("the reader refuses (") + e.what() + ") but libpcap opens it";
    }
    if (p) pcap_close(p);
    return why;
}

// All three ways must agree with libpcap.
std::string compare(const std::string& path, uint64_t* packets = nullptr) {
    for (const Way w : {Way::kMapped, Way::kSmallPieces, Way::kPieces}) {
        const std::string why = compare_way(path, w, packets);
        if (!why.empty())
            return (w == Way::kMapped ? "mapped: " : w == Way::kSmallPieces ? "4 KiB pieces: " : "pieces: ") + why;
    }
    return "";
}

std::vector<std::string> captures_in(const fs::path& dir) {
    std::vector<std::string> out;
    if (!fs::is_directory(dir)) return out;
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
        if (!e.is_regular_file()) continue;
        const auto ext = e.path().extension().string();
        if (ext == ".pcap" || ext == ".pcapng" || ext == ".cap" || ext == ".dmp") out.push_back(e.path().string());
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::string write_temp(const std::string& name, const std::string& bytes) {
    const std::string path = (fs::temp_directory_path() / ("weir-reader-" + name)).string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
}

std::string pcap_header(uint32_t magic, uint16_t major, uint16_t minor, uint32_t snaplen, uint32_t linktype) {
    std::string s(24, '\0');
    std::memcpy(&s[0], &magic, 4);
    std::memcpy(&s[4], &major, 2);
    std::memcpy(&s[6], &minor, 2);
    std::memcpy(&s[16], &snaplen, 4);
    std::memcpy(&s[20], &linktype, 4);
    return s;
}

std::string pcap_record(uint32_t sec, uint32_t frac, uint32_t caplen, uint32_t len, const std::string& data) {
    std::string s(16, '\0');
    std::memcpy(&s[0], &sec, 4);
    std::memcpy(&s[4], &frac, 4);
    std::memcpy(&s[8], &caplen, 4);
    std::memcpy(&s[12], &len, 4);
    return s + data;
}

// A record of the patched tcpdump's format: the usual header, then interface index, protocol,
// packet type and a pad byte.
std::string kuznetzov_record(uint32_t sec, uint32_t frac, uint32_t caplen, uint32_t len, const std::string& data) {
    return pcap_record(sec, frac, caplen, len, "") + std::string("\x02\0\0\0\x08\0\x04\0", 8) + data;
}

}  // namespace

TEST(CaptureReader, BundledCapturesReadAsLibpcapReadsThem) {
    const auto files = captures_in(fs::path(WEIR_SOURCE_DIR) / "captures");
    ASSERT_GT(files.size(), 50u);
    uint64_t total = 0;
    for (const auto& f : files) {
        uint64_t n = 0;
        EXPECT_EQ(compare(f, &n), "") << f;
        total += n;
    }
    EXPECT_GT(total, 1000u);
}

TEST(CaptureReader, CorpusReadsAsLibpcapReadsIt) {
    const char* dir = std::getenv("WEIR_PCAPS");
    if (!dir || fs::path(dir) == fs::path(WEIR_SOURCE_DIR) / "captures") GTEST_SKIP() << "WEIR_PCAPS names no corpus";
    const auto files = captures_in(dir);
    ASSERT_GT(files.size(), 0u) << dir;
    uint64_t total = 0;
    size_t differ = 0;
    for (const auto& f : files) {
        uint64_t n = 0;
        const std::string why = compare(f, &n);
        if (!why.empty()) {
            ++differ;
            ADD_FAILURE() << f << ": " << why;
        }
        total += n;
    }
    std::printf("%zu captures, %lu packets, %zu differ from libpcap\n", files.size(), static_cast<unsigned long>(total),
                differ);
}

TEST(CaptureReader, HandMadeFilesReadAsLibpcapReadsThem) {
    const std::string frame(60, 'x'), big(2000, 'y');
    struct Case {
        std::string name, bytes;
    };
    const uint32_t us = 0xa1b2c3d4, ns = 0xa1b23c4d;
    std::vector<Case> cases = {
        {"ns", pcap_header(ns, 2, 4, 65535, 1) + pcap_record(1, 999999999, 60, 60, frame)},
        {"snap-cut",
         pcap_header(us, 2, 4, 100, 1) + pcap_record(1, 2, 2000, 2000, big) + pcap_record(2, 0, 60, 60, frame)},
        {"too-big", pcap_header(us, 2, 4, 0, 1) + pcap_record(1, 2, 300000, 300000, big)},
        {"old-swapped-lengths", pcap_header(us, 2, 2, 65535, 1) + pcap_record(1, 2, 1514, 60, frame)},
        {"maybe-swapped",
         pcap_header(us, 2, 3, 65535, 1) + pcap_record(1, 2, 80, 60, frame) + pcap_record(1, 2, 60, 80, frame)},
        {"short-header", pcap_header(us, 2, 4, 65535, 1) + pcap_record(1, 2, 60, 60, frame) + std::string(10, '\0')},
        {"short-data", pcap_header(us, 2, 4, 65535, 1) + pcap_record(1, 2, 60, 60, frame.substr(0, 30))},
        {"raw-linktype", pcap_header(us, 2, 4, 65535, 101) + pcap_record(1, 2, 60, 60, frame)},
        {"empty-packet", pcap_header(us, 2, 4, 65535, 1) + pcap_record(1, 2, 0, 0, "")},
        // Versions: 2.0 .. 2.4 and 543.0 are read, others refused (2.34820 was a fuzz finding).
        {"version-2.5", pcap_header(us, 2, 5, 65535, 1) + pcap_record(1, 2, 60, 60, frame)},
        {"version-2.34820", pcap_header(us, 2, 34820, 65535, 1) + pcap_record(1, 2, 60, 60, frame)},
        {"version-3.0", pcap_header(us, 3, 0, 65535, 1) + pcap_record(1, 2, 60, 60, frame)},
        {"version-543.0", pcap_header(us, 543, 0, 65535, 1) + pcap_record(1, 2, 1514, 60, frame)},
        {"version-543.1", pcap_header(us, 543, 1, 65535, 1) + pcap_record(1, 2, 60, 60, frame)},
        // The patched tcpdump's format (24-byte record headers): on Ethernet, libpcap allows 14
        // bytes past the snapshot length for a cooked capture's made-up header (a fuzz finding).
        {"kuznetzov-ethernet",
         pcap_header(0xa1b2cd34, 2, 4, 10, 1) + kuznetzov_record(1, 2, 60, 60, frame) +
             kuznetzov_record(2, 3, 20, 60, frame.substr(0, 20))},
        {"kuznetzov-raw",
         pcap_header(0xa1b2cd34, 2, 4, 10, 101) + kuznetzov_record(1, 2, 60, 60, frame) +
             kuznetzov_record(2, 3, 20, 60, frame.substr(0, 20))},
    };
    // pcapng: a section with two interfaces (different time resolutions), enhanced, simple and
    // statistics blocks, and a second section.
    using namespace weir::capture;
    const uint8_t pkt[60] = {1, 2, 3};
    std::string ng = section_header_block() + interface_block(1, 65535) +
        packet_block(0, 1'500'000'000'123'456'789ull, pkt, 60, 60, "c") + interface_block(1, 65535) +
        packet_block(1, 7, pkt, 60, 64, "") + section_header_block() + interface_block(1, 65535) +
        packet_block(0, 9, pkt, 60, 60, "");
    cases.push_back({"ng", ng});
    cases.push_back({"ng-truncated", ng.substr(0, ng.size() - 5)});
    cases.push_back({"ng-no-idb", section_header_block()});
    // The first section header is read as libpcap reads it: its trailer and a length that is not
    // a multiple of 4 pass (a fuzz finding: weir refused a file libpcap opens), a length past
    // 1 MiB or below 28 does not; a later section header is checked as every block is.
    const auto with_length = [](std::string b, uint32_t len) {
        std::memcpy(&b[4], &len, 4);
        return b;
    };
    const std::string shb = section_header_block(),
                      rest = interface_block(1, 65535) + packet_block(0, 9, pkt, 60, 60, "");
    std::string bad_trailer = shb;
    bad_trailer[bad_trailer.size() - 4] ^= 4;
    cases.push_back({"ng-first-trailer", bad_trailer + rest});
    cases.push_back(
        {"ng-first-unaligned", with_length(shb, static_cast<uint32_t>(shb.size()) + 2) + std::string(2, '\0') + rest});
    cases.push_back({"ng-first-insane", with_length(shb, (1u << 20) + 4) + rest});
    cases.push_back({"ng-first-short", with_length(shb, 24) + rest});
    cases.push_back({"ng-later-trailer", shb + rest + bad_trailer + rest});
    // An end-of-options option with a length is refused, as libpcap refuses it (a fuzz finding);
    // one with none ends the options, whatever follows it.
    const auto idb_with_end = [&](uint16_t end_len) {
        std::string b = interface_block(1, 65535);
        const uint32_t len = static_cast<uint32_t>(b.size()) + 4;
        b.insert(b.size() - 4, std::string(4, '\x7f'));
        std::memcpy(&b[4], &len, 4);
        std::memcpy(&b[len - 4], &len, 4);
        std::memcpy(&b[26], &end_len, 2);
        return b;
    };
    // A packet longer than the snapshot length is refused, not cut; a simple packet block whose
    // packet (cut to the snapshot length) is not in the block too (fuzz findings).
    const std::string idb30 = interface_block(1, 30);
    cases.push_back({"ng-over-snaplen", shb + idb30 + packet_block(0, 9, pkt, 60, 60, "")});
    const auto simple = [](uint32_t wire, size_t have) {
        std::string b(16 + have, 'z');
        const uint32_t h[3] = {3, static_cast<uint32_t>(b.size()), wire};
        std::memcpy(&b[0], h, 12);
        std::memcpy(&b[b.size() - 4], &h[1], 4);
        return b;
    };
    cases.push_back({"ng-simple-short", shb + interface_block(1, 65535) + simple(100, 60)});
    cases.push_back({"ng-simple-cut", shb + idb30 + simple(100, 32)});
    // A later section header: its byte order magic is looked at only among the packets, and
    // only its major version must be 1 (fuzz findings).
    std::string bad_bom = shb, minor1 = shb, major2 = shb;
    bad_bom[8] ^= 0x19;
    minor1[14] = 1;
    major2[12] = 2;
    cases.push_back({"ng-bad-magic-before-idb", shb + bad_bom + rest});
    cases.push_back({"ng-bad-magic-later", shb + rest + bad_bom + rest});
    cases.push_back({"ng-later-minor-1", shb + rest + minor1 + rest});
    cases.push_back({"ng-later-major-2", shb + rest + major2 + rest});
    // Snapshot lengths as libpcap 1.10 takes them: 0 is the link type's maximum, a larger value
    // stands; a later interface must agree (a fuzz finding).
    const auto two_ifaces = [&](uint32_t a, uint32_t b) {
        const std::string p1 = packet_block(0, 9, pkt, 60, 60, "");
        return shb + interface_block(1, a) + p1 + interface_block(1, b) + p1;
    };
    cases.push_back({"ng-snap-0-0", two_ifaces(0, 0)});
    cases.push_back({"ng-snap-max-0", two_ifaces(262144, 0)});
    cases.push_back({"ng-snap-max-big", two_ifaces(262144, 999999)});
    cases.push_back({"ng-snap-big-big", two_ifaces(999999, 999999)});
    cases.push_back({"pcap-snap-big", pcap_header(us, 2, 4, 999999, 1) + pcap_record(1, 2, 60, 60, frame)});
    // Binary time units, 2^-20 to 2^-34 s: 2^30 units a second and more are not a power of 10
    // (a fuzz finding: they were taken for one).
    for (const uint8_t k : {20, 30, 32, 34}) {
        std::string idb = interface_block(1, 65535);
        idb[20] = static_cast<char>(0x80 | k);
        const uint64_t t = (uint64_t{1369141} << k) + (uint64_t{1} << k) / 3 + 12345;
        cases.push_back({"ng-binary-units-" + std::to_string(k), shb + idb + packet_block(0, t, pkt, 60, 60, "")});
    }
    cases.push_back({"ng-two-headers", shb + shb + rest});  // the second is passed over (a fuzz finding)
    cases.push_back({"ng-endofopt-length", shb + idb_with_end(2) + packet_block(0, 9, pkt, 60, 60, "")});
    cases.push_back({"ng-endofopt-then-bytes", shb + idb_with_end(0) + packet_block(0, 9, pkt, 60, 60, "")});
    for (auto& c : cases) {
        const std::string path = write_temp(c.name, c.bytes);
        EXPECT_EQ(compare(path), "") << c.name;
        fs::remove(path);
    }
}

// Packets of a read file stay as they are while held, however far the reader has gone on, and
// the buffers are reused once released.
TEST(CaptureReader, HeldPacketsOfAReadFileStay) {
    const auto files = captures_in(fs::path(WEIR_SOURCE_DIR) / "captures");
    std::string path;
    uintmax_t best = 0;
    for (const auto& f : files)  // the largest bundled pcap: many 4 KiB pieces
        if (fs::path(f).extension() == ".pcap" && fs::file_size(f) > best) {
            best = fs::file_size(f);
            path = f;
        }
    ASSERT_GT(best, 64u * 1024) << path;
    CaptureReader r(path, CaptureReader::Streamed{}, 4096);
    CaptureReader mapped(path);
    struct Held {
        Packet k;
        void* token;
    };
    std::vector<Held> held;
    Packet k, m;
    while (r.next(k)) {
        held.push_back({k, r.hold()});
        ASSERT_NE(held.back().token, nullptr);
    }
    EXPECT_EQ(r.error(), "");
    ASSERT_GT(held.size(), 100u);
    for (const Held& h : held) {
        ASSERT_TRUE(mapped.next(m));
        ASSERT_EQ(h.k.caplen, m.caplen);
        ASSERT_EQ(std::memcmp(h.k.data, m.data, m.caplen), 0) << "a held packet changed";
    }
    for (const Held& h : held) CaptureReader::release(h.token);
    r.trim();
    // Read again, releasing as it goes: the same packets, from reused buffers.
    r.rewind();
    mapped.rewind();
    uint64_t n = 0;
    while (r.next(k)) {
        void* t = r.hold();
        ASSERT_TRUE(mapped.next(m));
        ASSERT_EQ(std::memcmp(k.data, m.data, m.caplen), 0);
        CaptureReader::release(t);
        ++n;
    }
    EXPECT_EQ(n, held.size());
    CaptureReader::release(nullptr);  // a mapped file's token: nothing
    EXPECT_EQ(mapped.hold(), nullptr);
}

TEST(CaptureReader, RefusesWhatIsNotACapture) {
    const std::string path = write_temp("text", "hello, this is not a capture file at all");
    EXPECT_THROW(CaptureReader r(path), std::runtime_error);
    fs::remove(path);
    EXPECT_THROW(CaptureReader r("/nonexistent/weir.pcap"), std::runtime_error);
    const uint8_t two[2] = {0xd4, 0xc3};
    EXPECT_THROW(CaptureReader r(two, 2), std::runtime_error);
}

// A pcapng file with two interfaces of a link type whose number is not its DLT (LINKTYPE_RAW 101,
// DLT_RAW 12): libpcap 1.10 compares the second's number with the first's DLT and stops with
// "an interface has a type 101 different from the type of the first interface" (a capture fuzz
// finding); weir reads every packet, as tshark does.
TEST(CaptureReader, TwoRawIpInterfacesAreRead) {
    using namespace weir::capture;
    const uint8_t ip[28] = {0x45, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0, 192, 168, 0, 1, 192, 168, 0, 2};
    const std::string file = section_header_block() + interface_block(101, 65535) + interface_block(101, 65535) +
        packet_block(1, 7, ip, 28, 28, "") + packet_block(0, 8, ip, 28, 28, "");
    CaptureReader r(reinterpret_cast<const uint8_t*>(file.data()), file.size());
    EXPECT_EQ(r.linktype(), linktype_to_dlt(101));
    Packet k;
    ASSERT_TRUE(r.next(k));
    EXPECT_EQ(k.caplen, 28u);
    ASSERT_TRUE(r.next(k));
    EXPECT_EQ(k.ts_ns, 8u);
    EXPECT_FALSE(r.next(k));
    EXPECT_EQ(r.error(), "");
}
