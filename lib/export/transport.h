// SPDX-License-Identifier: BSD-3-Clause
// Where an exporter's messages go: UDP datagrams, a TCP connection (reconnect with backoff,
// bounded queue, never blocking), or files (RFC 5655 for IPFIX: the messages one after the
// other) with rotation by size and age. Control thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "config/config.h"

namespace weir::exporter {

class Transport {
public:
    virtual ~Transport() = default;
    // Delivers (or queues) one whole message holding `records` records of `packets` packets;
    // false when it could not (errno in last_errno()).
    virtual bool send(const uint8_t* p, size_t n, uint32_t now_s, uint64_t records = 0, uint64_t packets = 0) = 0;
    // Called before each message of up to n bytes: a file transport rotates here, so the
    // exporter sees the new generation and sends templates first.
    virtual void prepare(size_t /*n*/, uint32_t /*now_s*/) {}
    // Changes when templates must go out again: a new file, a new connection.
    virtual uint64_t generation() const { return 0; }
    // A new generation is a new transport session (TCP): sequence numbers start again at 0.
    virtual bool new_session_per_generation() const { return false; }
    // Messages accepted but lost since the last call (a connection that broke with messages
    // still queued): the exporter moves them from sent to lost.
    // A transport that sends in batches (UDP, see batch()) reports here, besides, how many
    // messages its flushes sent and how many failed, with the last failure's errno.
    struct Lost {
        uint64_t records = 0, packets = 0, messages = 0;
        uint64_t sent = 0, failed = 0;
        int err = 0;
    };
    virtual Lost take_lost() { return {}; }
    // UDP: from now on, send() queues whole messages and flush() sends them with one system call
    // (sendmmsg; also when the queue is full). Others send at once and ignore this.
    virtual void batch() {}
    virtual bool batching() const { return false; }
    virtual void flush() {}
    virtual uint64_t reconnects() const { return 0; }
    // UDP: whether the collector answered an earlier datagram with ICMP port unreachable since the
    // last call (the datagrams themselves were still sent).
    virtual bool take_refused() { return false; }
    // Largest message this transport carries.
    virtual size_t max_message() const = 0;
    int last_errno() const { return errno_; }

protected:
    int errno_ = 0;
};

std::unique_ptr<Transport> make_transport(const config::Exporter& ex, const config::Config& cfg);

}  // namespace weir::exporter
