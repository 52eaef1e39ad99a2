// SPDX-License-Identifier: BSD-3-Clause
#include "export/failure_log.h"

#include "common/log.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace weir::exporter {
namespace {

using namespace std::chrono_literals;

// The lines written to `f` since the last call.
std::string drain(std::FILE* f, long& pos) {
    std::fflush(f);
    std::fseek(f, pos, SEEK_SET);
    std::string out;
    char buf[512];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
    pos = std::ftell(f);
    return out;
}

TEST(FailureLog, FirstFailureReminderAndRecovery) {
    std::FILE* f = std::tmpfile();
    ASSERT_NE(f, nullptr);
    long pos = 0;
    log::set_stream(f);
    FailureLog fl("exporter ipfix udp://127.0.0.1:4739", 60s);
    const auto t0 = FailureLog::Clock::time_point{} + 1000s;

    fl.ok(t0);
    EXPECT_EQ(drain(f, pos), "") << "nothing to say while it works";

    fl.failed("Connection refused", t0);
    EXPECT_EQ(drain(f, pos),
              "weir: exporter ipfix udp://127.0.0.1:4739: delivery failed: Connection refused (what it carries is "
              "counted lost until it recovers)\n");
    EXPECT_TRUE(fl.failing());
    for (int i = 1; i < 59; ++i) fl.failed("Connection refused", t0 + std::chrono::seconds(i));
    EXPECT_EQ(drain(f, pos), "") << "no line per failure";
    fl.failed("Connection refused", t0 + 61s);
    EXPECT_EQ(drain(f, pos),
              "weir: exporter ipfix udp://127.0.0.1:4739: still failing after 61 s: 60 deliveries failed (last: "
              "Connection refused)\n");
    fl.failed("No buffer space available", t0 + 90s);
    EXPECT_EQ(drain(f, pos), "") << "the next reminder is a minute after the last";
    fl.ok(t0 + 95s);
    EXPECT_EQ(drain(f, pos),
              "weir: exporter ipfix udp://127.0.0.1:4739: recovered after 95.0 s; 61 deliveries failed meanwhile "
              "(last: No buffer space available)\n");
    EXPECT_FALSE(fl.failing());
    fl.ok(t0 + 96s);
    EXPECT_EQ(drain(f, pos), "");

    fl.failed("Connection refused", t0 + 200s);
    EXPECT_NE(drain(f, pos).find("delivery failed: Connection refused"), std::string::npos) << "a new episode";
    EXPECT_EQ(fl.episodes(), 2u);
    log::set_level(log::Level::kWarning);
    fl.ok(t0 + 201s);
    EXPECT_EQ(drain(f, pos), "") << "a recovery is a notice, below the warning level";
    log::set_level(log::Level::kInfo);
    log::set_stream(stderr);
    std::fclose(f);
}

}  // namespace
}  // namespace weir::exporter
