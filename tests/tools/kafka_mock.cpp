// SPDX-License-Identifier: BSD-3-Clause
// A Kafka cluster for the integration tests: librdkafka's mock cluster (real Kafka protocol on
// local ports) plus a consumer that reads a topic back.
//
//   weir-kafka-mock BROKERS TOPIC PARTITIONS
// prints "bootstrap HOST:PORT,..." and then takes commands on stdin, one per line, answering each
// with one line:
//   down N | up N                 broker N (1..BROKERS) stops / starts answering    -> "ok"
//   consume FILE MIN IDLE_MS      reads TOPIC from the beginning of every partition until at
//                                 least MIN messages came and then none for IDLE_MS (or 60 s
//                                 passed); writes "partition offset key hex(value)" per line
//                                                                                   -> "consumed N"
// End of input ends it.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>

namespace {

[[noreturn]] void die(const std::string& why) {
    std::fprintf(stderr, "weir-kafka-mock: %s\n", why.c_str());
    std::exit(1);
}

long consume(const std::string& bootstrap, const std::string& topic, int partitions, const std::string& file, long min,
             long idle_ms) {
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "group.id", "weir-test-reader", err, sizeof(err)) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err)) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "false", err, sizeof(err)) != RD_KAFKA_CONF_OK)
        die(err);
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (!rk) die(err);
    rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; ++p)
        rd_kafka_topic_partition_list_add(parts, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    if (rd_kafka_assign(rk, parts) != RD_KAFKA_RESP_ERR_NO_ERROR) die("cannot assign the partitions");
    rd_kafka_topic_partition_list_destroy(parts);
    FILE* out = std::fopen(file.c_str(), "w");
    if (!out) die("cannot write " + file);
    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    auto last = start;
    long n = 0;
    while (Clock::now() - start < std::chrono::seconds(60)) {
        rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
        if (!m) {
            if (n >= min && Clock::now() - last > std::chrono::milliseconds(idle_ms)) break;
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            std::fprintf(out, "%d %lld %.*s ", m->partition, static_cast<long long>(m->offset),
                         static_cast<int>(m->key_len), m->key ? static_cast<const char*>(m->key) : "");
            const auto* v = static_cast<const unsigned char*>(m->payload);
            for (size_t i = 0; i < m->len; ++i) std::fprintf(out, "%02x", v[i]);
            std::fputc('\n', out);
            ++n;
            last = Clock::now();
        }
        rd_kafka_message_destroy(m);
    }
    std::fclose(out);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return n;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 4) die("usage: weir-kafka-mock BROKERS TOPIC PARTITIONS");
    const int brokers = std::atoi(argv[1]);
    const std::string topic = argv[2];
    const int partitions = std::atoi(argv[3]);
    if (brokers < 1 || partitions < 1) die("BROKERS and PARTITIONS must be at least 1");
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    // The handle only hosts the cluster: it talks to no broker (and need not say so).
    if (rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err)) != RD_KAFKA_CONF_OK) die(err);
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!rk) die(err);
    rd_kafka_mock_cluster_t* mc = rd_kafka_mock_cluster_new(rk, brokers);
    if (!mc) die("cannot start the mock cluster");
    if (rd_kafka_mock_topic_create(mc, topic.c_str(), partitions, brokers < 3 ? brokers : 3) !=
        RD_KAFKA_RESP_ERR_NO_ERROR)
        die("cannot create topic " + topic);
    const std::string bootstrap = rd_kafka_mock_cluster_bootstraps(mc);
    std::cout << "bootstrap " << bootstrap << std::endl;
    std::string line;
    while (std::getline(std::cin, line)) {
        std::istringstream in(line);
        std::string cmd;
        in >> cmd;
        if (cmd == "down" || cmd == "up") {
            int id = 0;
            in >> id;
            const auto rc = cmd == "down" ? rd_kafka_mock_broker_set_down(mc, id) : rd_kafka_mock_broker_set_up(mc, id);
            std::cout << (rc == RD_KAFKA_RESP_ERR_NO_ERROR ? "ok" : "error") << std::endl;
        } else if (cmd == "consume") {
            std::string file;
            long min = 0, idle = 2000;
            in >> file >> min >> idle;
            std::cout << "consumed " << consume(bootstrap, topic, partitions, file, min, idle) << std::endl;
        } else if (!cmd.empty()) {
            std::cout << "error unknown command " << cmd << std::endl;
        }
    }
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}
