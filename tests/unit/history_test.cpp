// SPDX-License-Identifier: BSD-3-Clause
// The page's history: rates between samples, the window, merging neighbours, the ring.
#include <gtest/gtest.h>

#include "metrics/history.h"

using weir::metrics::History;
using weir::metrics::Sample;

namespace {
Sample at(double t, uint64_t packets, uint64_t active = 0, double busy = 0) {
    Sample s;
    s.t = t;
    s.rx_packets = packets;
    s.rx_bytes = packets * 100;
    s.flows_active = active;
    s.busy = busy;
    return s;
}
}  // namespace

TEST(History, RatesBetweenSamples) {
    History h(100, 10);
    EXPECT_TRUE(h.json(3600)["t"].empty());
    h.add(at(1000, 0));
    EXPECT_TRUE(h.json(3600)["t"].empty()) << "one sample: no rate yet";
    h.add(at(1010, 500, 7, 0.25));
    h.add(at(1020, 500, 3, 0.5));
    const auto j = h.json(3600);
    ASSERT_EQ(j["t"].size(), 2u);
    EXPECT_EQ(j["pps"][0], 50.0);
    EXPECT_EQ(j["bps"][0], 40000.0);
    EXPECT_EQ(j["pps"][1], 0.0);
    EXPECT_EQ(j["flows_active"][1], 3);
    EXPECT_EQ(j["busy"][1], 0.5);
    EXPECT_EQ(j["step_s"], 10.0);
}

TEST(History, WindowMergingAndRing) {
    History h(50, 1);
    for (int i = 0; i <= 60; ++i) h.add(at(i, static_cast<uint64_t>(i) * 10, 0, i == 33 ? 0.9 : 0.1));
    auto j = h.json(0);  // the ring keeps the last 50 samples: 49 rates
    EXPECT_EQ(j["t"].size(), 49u);
    EXPECT_EQ(j["t"][0], 12.0);
    j = h.json(20);  // the last 20 s, and the sample before them for the first rate
    EXPECT_EQ(j["t"].size(), 20u);
    EXPECT_EQ(j["t"][0], 41.0);
    j = h.json(0, 10);  // at most 10 points: every 5th sample, rates over 5 s, busy as the peak
    EXPECT_LE(j["t"].size(), 10u);
    EXPECT_EQ(j["step_s"], 5.0);
    for (const auto& v : j["pps"]) EXPECT_EQ(v, 10.0);
    double peak = 0;
    for (const auto& v : j["busy"]) peak = std::max(peak, v.get<double>());
    EXPECT_EQ(peak, 0.9);
    h.configure(10);
    EXPECT_TRUE(h.json(0)["t"].empty());
    EXPECT_EQ(h.step_s(), 10);
}
