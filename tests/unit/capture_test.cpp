// SPDX-License-Identifier: BSD-3-Clause
// Capture files: pcapng blocks as the format lays them out, files of mode 0600 that rotate by size,
// and a disk budget that deletes weir's oldest files (those from before a restart too).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "capture/pcapng.h"

using namespace weir::capture;
namespace fs = std::filesystem;

namespace {

uint32_t rd32(const std::string& b, size_t off) {
    uint32_t v;
    std::memcpy(&v, b.data() + off, 4);
    return v;
}

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

struct TempDir {
    fs::path path = fs::temp_directory_path() / ("weir-capture-test-" + std::to_string(getpid()));
    TempDir() { fs::remove_all(path); }
    ~TempDir() { fs::remove_all(path); }
};

std::vector<fs::path> files_in(const fs::path& d) {
    std::vector<fs::path> v;
    for (const auto& e : fs::directory_iterator(d)) v.push_back(e.path());
    std::sort(v.begin(), v.end());
    return v;
}

}  // namespace

TEST(Pcapng, BlocksAreWellFormed) {
    const std::string shb = section_header_block();
    EXPECT_EQ(rd32(shb, 0), 0x0A0D0D0Au);
    EXPECT_EQ(rd32(shb, 4), shb.size());
    EXPECT_EQ(rd32(shb, shb.size() - 4), shb.size());
    EXPECT_EQ(rd32(shb, 8), 0x1A2B3C4Du);
    const uint8_t frame[5] = {1, 2, 3, 4, 5};
    const std::string epb = packet_block(0, 1'700'000'000'123'456'789ull, frame, 5, 60, "flow x");
    EXPECT_EQ(rd32(epb, 0), 6u);
    EXPECT_EQ(epb.size() % 4, 0u);
    EXPECT_EQ(rd32(epb, 4), epb.size());
    const uint64_t ts = static_cast<uint64_t>(rd32(epb, 12)) << 32 | rd32(epb, 16);
    EXPECT_EQ(ts, 1'700'000'000'123'456'789ull);
    EXPECT_EQ(rd32(epb, 20), 5u);
    EXPECT_EQ(rd32(epb, 24), 60u);
    EXPECT_EQ(std::memcmp(epb.data() + 28, frame, 5), 0);
    // opt_comment after the padded data: code 1, length 6, "flow x".
    EXPECT_EQ(epb.substr(36, 4), std::string("\x01\x00\x06\x00", 4));
    EXPECT_EQ(epb.substr(40, 6), "flow x");
}

TEST(Pcapng, RotatesBySizeWithMode0600AndKeepsTheBudget) {
    TempDir t;
    WriterConfig c;
    c.dir = t.path.string();
    c.file_bytes = 2000;
    c.file_s = 0;
    c.budget_bytes = 5000;
    std::vector<uint8_t> frame(400, 0xAB);
    {
        PcapngWriter w(c);
        for (int i = 0; i < 40; ++i) w.write(1'700'000'000'000'000'000ull + i, 1, frame.data(), 400, 400, "c", 100 + i);
        w.close();
        EXPECT_EQ(w.stats().packets + w.stats().budget_drops, 40u);
        EXPECT_GT(w.stats().files, 3u);
        EXPECT_GT(w.stats().deleted, 0u);
        EXPECT_EQ(w.stats().write_errors, 0u);
        uint64_t total = 0;
        for (const auto& f : files_in(t.path)) {
            struct stat st;
            ASSERT_EQ(stat(f.c_str(), &st), 0);
            EXPECT_EQ(st.st_mode & 0777, 0600u) << f;
            total += static_cast<uint64_t>(st.st_size);
            const std::string b = slurp(f);
            EXPECT_EQ(rd32(b, 0), 0x0A0D0D0Au) << f;  // every file starts a section
        }
        EXPECT_LE(total, c.budget_bytes);
        EXPECT_EQ(total, w.stats().on_disk);
    }
    // A restart counts the files already there: one more file's worth deletes the oldest.
    const auto before = files_in(t.path);
    PcapngWriter w2(c);
    EXPECT_GT(w2.stats().on_disk, 0u);
    for (int i = 0; i < 10; ++i) w2.write(1'800'000'000'000'000'000ull + i, 1, frame.data(), 400, 400, "", 200 + i);
    w2.close();
    EXPECT_FALSE(fs::exists(before.front()));
    EXPECT_GT(w2.stats().deleted, 0u);
}
