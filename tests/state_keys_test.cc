#include "weir/internal/state_keys.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "weir/time.h"

namespace weir::internal {
namespace {

std::string Window(std::string_view key, uint16_t group, int64_t start) {
  std::string out;
  WindowKey(key, group, start, &out);
  return out;
}

std::string Timer(int64_t time, uint8_t kind, uint16_t group, int64_t start,
                  std::string_view key) {
  std::string out;
  TimerKey(time, kind, group, start, key, &out);
  return out;
}

// The bytes are on disk: these pin them.
TEST(StateKeysTest, WindowKeyBytesAreTheStoredLayout) {
  EXPECT_EQ(Window("ab", 1, 0), std::string("\x00\x00\x00\x02"
                                            "ab"
                                            "\x00\x01"
                                            "\x80\x00\x00\x00\x00\x00\x00\x00",
                                            16));
  EXPECT_EQ(Window("", 0, -1), std::string("\x00\x00\x00\x00"
                                           "\x00\x00"
                                           "\x7f\xff\xff\xff\xff\xff\xff\xff",
                                           14));
}

TEST(StateKeysTest, TimerKeyBytesAreTheStoredLayout) {
  EXPECT_EQ(Timer(1, kCleanupTimer, 2, 3, "k"),
            std::string("\x80\x00\x00\x00\x00\x00\x00\x01"
                        "\x01"
                        "\x00\x02"
                        "\x80\x00\x00\x00\x00\x00\x00\x03"
                        "k",
                        20));
  EXPECT_EQ(kFireTimer, 0);
  EXPECT_EQ(kCleanupTimer, 1);
}

TEST(StateKeysTest, WindowKeyReplacesTheOutput) {
  std::string out = "left over";
  WindowKey("k", 0, 0, &out);
  EXPECT_EQ(out, Window("k", 0, 0));
  WindowKeyPrefix("k", 0, &out);
  EXPECT_EQ(out.size(), 4u + 1u + 2u);
}

TEST(StateKeysTest, PrefixStartsEveryWindowKeyOfTheKeyAndGroup) {
  std::string prefix;
  WindowKeyPrefix("user", 3, &prefix);
  for (int64_t start : {kMinEventTime, int64_t{-5}, int64_t{0}, int64_t{60'000},
                        kMaxEventTime}) {
    const std::string key = Window("user", 3, start);
    EXPECT_EQ(key.substr(0, prefix.size()), prefix);
    EXPECT_EQ(key.size(), prefix.size() + 8);
  }
  EXPECT_NE(Window("user", 4, 0).substr(0, prefix.size()), prefix);
  EXPECT_NE(Window("users", 3, 0).substr(0, prefix.size()), prefix);
}

// A key's windows are contiguous, in group then start order, whatever
// other entity keys share a prefix with it.
TEST(StateKeysTest, WindowKeysOrderByEntityThenGroupThenStart) {
  const std::vector<std::string> entities = {
      "", "a", "ab", "b", "a\xff", std::string("a\0", 2)};
  const std::vector<int64_t> starts = {kMinEventTime, -60'000,      -1, 0, 1,
                                       60'000,        kMaxEventTime};
  struct Item {
    std::string entity;
    uint16_t group;
    int64_t start;
    std::string bytes;
  };
  std::vector<Item> items;
  for (const std::string& e : entities) {
    for (uint16_t g : {uint16_t{0}, uint16_t{1}, uint16_t{65535}}) {
      for (int64_t s : starts) items.push_back({e, g, s, Window(e, g, s)});
    }
  }
  std::sort(items.begin(), items.end(),
            [](const Item& a, const Item& b) { return a.bytes < b.bytes; });
  for (size_t i = 1; i < items.size(); ++i) {
    const Item& a = items[i - 1];
    const Item& b = items[i];
    if (a.entity == b.entity && a.group == b.group) {
      EXPECT_LT(a.start, b.start);
    } else if (a.entity == b.entity) {
      EXPECT_LT(a.group, b.group);
    }
  }
  // Contiguous: each (entity, group) run appears once.
  std::vector<std::pair<std::string, uint16_t>> runs;
  for (const Item& it : items) {
    if (runs.empty() || runs.back() != std::make_pair(it.entity, it.group)) {
      runs.emplace_back(it.entity, it.group);
    }
  }
  EXPECT_EQ(runs.size(), entities.size() * 3);
}

std::string Fixed(uint16_t group, int64_t start, std::string_view key) {
  std::string out;
  FixedWindowKey(group, start, key, &out);
  return out;
}

TEST(StateKeysTest, FixedWindowKeyBytesAreTheStoredLayout) {
  EXPECT_EQ(Fixed(1, 0, "ab"), std::string("\xff\xff\xff\xff"
                                           "\x00\x01"
                                           "\x80\x00\x00\x00\x00\x00\x00\x00"
                                           "ab",
                                           16));
  std::string bound;
  FixedWindowBound(1, 0, &bound);
  EXPECT_EQ(bound, Fixed(1, 0, ""));
}

// A group's fixed-length windows sort by start, then entity, after every
// session key: a range of starts is a range of keys.
TEST(StateKeysTest, FixedWindowKeysOrderByGroupThenStartAndRoundTrip) {
  const std::vector<std::string> entities = {
      "", "a", "ab", "b", "a\xff", std::string("a\0", 2)};
  const std::vector<int64_t> starts = {kMinEventTime, -60'000,      -1, 0, 1,
                                       60'000,        kMaxEventTime};
  std::vector<std::string> sorted;
  for (uint16_t g : {uint16_t{0}, uint16_t{1}, uint16_t{65535}}) {
    for (int64_t s : starts) {
      for (const std::string& e : entities) {
        sorted.push_back(Fixed(g, s, e));
        DecodedWindowKey w;
        ASSERT_TRUE(DecodeWindowKey(sorted.back(), &w));
        EXPECT_TRUE(w.fixed);
        EXPECT_EQ(w.group, g);
        EXPECT_EQ(w.start, s);
        EXPECT_EQ(w.key, e);
        std::string lo, hi;
        FixedWindowBound(g, s, &lo);
        FixedWindowBound(g, SaturatingAdd(s, 1), &hi);
        EXPECT_LE(lo, sorted.back());
        if (s != kMaxEventTime) EXPECT_LT(sorted.back(), hi);
      }
    }
  }
  std::vector<std::string> by_bytes = sorted;
  std::sort(by_bytes.begin(), by_bytes.end());
  // (Entities of one start sort by their bytes.)
  for (size_t i = 0; i + 1 < sorted.size(); ++i) {
    DecodedWindowKey a, b;
    ASSERT_TRUE(DecodeWindowKey(by_bytes[i], &a));
    ASSERT_TRUE(DecodeWindowKey(by_bytes[i + 1], &b));
    EXPECT_LE(std::make_pair(a.group, a.start),
              std::make_pair(b.group, b.start));
  }
  // Every session key sorts before every fixed-length one.
  EXPECT_LT(Window(std::string(1000, '\xff'), 65535, kMaxEventTime),
            Fixed(0, kMinEventTime, ""));
  DecodedWindowKey w;
  const std::string session = Window("user", 3, -5);
  ASSERT_TRUE(DecodeWindowKey(session, &w));
  EXPECT_FALSE(w.fixed);
  EXPECT_EQ(w.key, "user");
  EXPECT_EQ(w.group, 3);
  EXPECT_EQ(w.start, -5);
  EXPECT_FALSE(DecodeWindowKey("\x00\x00", &w));
  EXPECT_FALSE(DecodeWindowKey(session + "x", &w));
}

TEST(StateKeysTest, TimerKeysRoundTrip) {
  for (int64_t time : {kMinEventTime, int64_t{-1}, int64_t{0},
                       int64_t{1'700'000'000'000}, kMaxEventTime}) {
    for (uint8_t kind : {kFireTimer, kCleanupTimer}) {
      for (std::string_view key :
           {std::string_view(""), std::string_view("user-7"),
            std::string_view("\0\xff", 2)}) {
        const std::string bytes = Timer(time, kind, 65535, time / 2, key);
        DecodedTimer t;
        ASSERT_TRUE(DecodeTimerKey(bytes, &t));
        EXPECT_EQ(t.time, time);
        EXPECT_EQ(t.kind, kind);
        EXPECT_EQ(t.group, 65535);
        EXPECT_EQ(t.start, time / 2);
        EXPECT_EQ(t.key, key);
      }
    }
  }
}

TEST(StateKeysTest, TruncatedTimerKeysDoNotDecode) {
  const std::string bytes = Timer(5, kFireTimer, 1, 2, "");
  DecodedTimer t;
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(DecodeTimerKey(std::string_view(bytes).substr(0, n), &t)) << n;
  }
  EXPECT_TRUE(DecodeTimerKey(bytes, &t));
}

TEST(StateKeysTest, TimerKeysOrderByTimeFirst) {
  const std::vector<int64_t> times = {kMinEventTime, -1, 0, 1, kMaxEventTime};
  std::vector<std::string> keys;
  for (int64_t t : times) {
    // Kind, group, start and entity vary against the time.
    keys.push_back(Timer(t, kCleanupTimer, 65535, kMaxEventTime, "zzz"));
    keys.push_back(Timer(t, kFireTimer, 0, kMinEventTime, ""));
  }
  for (size_t i = 0; i + 2 < keys.size(); i += 2) {
    EXPECT_LT(keys[i], keys[i + 2]);
    EXPECT_LT(keys[i + 1], keys[i + 2]);
    EXPECT_LT(keys[i], keys[i + 3]);
  }
}

TEST(StateKeysTest, TimerBoundSeparatesDueTimers) {
  for (int64_t t : {int64_t{-10}, int64_t{0}, int64_t{59'999}}) {
    const std::string bound = TimerBound(t);
    EXPECT_LT(Timer(t, kCleanupTimer, 65535, kMaxEventTime, "\xff\xff"), bound);
    EXPECT_GE(Timer(t + 1, kFireTimer, 0, kMinEventTime, ""), bound);
  }
  // Saturates rather than wrapping round to the smallest time.
  EXPECT_LT(Timer(kMaxEventTime - 1, kCleanupTimer, 65535, 0, "\xff"),
            TimerBound(kMaxEventTime));
}

}  // namespace
}  // namespace weir::internal
