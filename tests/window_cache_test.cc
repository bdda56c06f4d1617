#include "weir/internal/window_cache.h"

#include <cstdint>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/time.h"
#include "weir/window.h"

namespace weir::internal {
namespace {

using ::testing::ElementsAre;
using ::testing::Optional;

class WindowCacheTest : public ::testing::Test {
 protected:
  uint32_t Insert(std::string_view key, int64_t start, uint16_t group = 0,
                  size_t acc_words = 2) {
    return cache_.Insert(group, key, Window{start, start + 60'000},
                         cache_.CompleteInMemory(group, start), acc_words,
                         /*now_ms=*/1234);
  }
  // Evicts up to `target` entries; returns the slots evicted, in order.
  std::vector<uint32_t> Evict(size_t target) {
    std::vector<uint32_t> evicted;
    absl::Status s = cache_.EvictSome(target, [&](uint32_t slot) {
      evicted.push_back(slot);
      cache_.Erase(slot);
      return absl::OkStatus();
    });
    EXPECT_TRUE(s.ok()) << s;
    return evicted;
  }

  WindowCache cache_{/*groups=*/2};
};

TEST_F(WindowCacheTest, FindsWhatWasInserted) {
  const uint32_t slot = Insert("user-1", 0);
  EXPECT_THAT(cache_.Find("user-1", 0, 0), Optional(slot));
  ASSERT_TRUE(cache_.FindKey("user-1").has_value());
  EXPECT_THAT(cache_.FindIn(*cache_.FindKey("user-1"), 0, 0), Optional(slot));
  EXPECT_TRUE(cache_.Contains("user-1", 0, 0));
  EXPECT_EQ(cache_.Find("user-1", 60'000, 0), std::nullopt);
  EXPECT_EQ(cache_.Find("user-1", 0, 1), std::nullopt);
  EXPECT_EQ(cache_.Find("user-2", 0, 0), std::nullopt);
  EXPECT_EQ(cache_.live(), 1u);

  const CacheEntry& e = cache_.entry(slot);
  EXPECT_EQ(cache_.KeyOf(e), "user-1");
  EXPECT_EQ(cache_.KeyOf(slot), "user-1");
  EXPECT_EQ(e.start, 0);
  EXPECT_EQ(e.end, 60'000);
  EXPECT_TRUE(e.live);
  EXPECT_TRUE(e.referenced);
  EXPECT_TRUE(e.complete);
  EXPECT_FALSE(e.dirty);
  EXPECT_FALSE(e.timer.set);
  EXPECT_EQ(e.max_offset, -1);
  EXPECT_EQ(e.touched_ms, 1234);
  EXPECT_EQ(e.acc.size(), 2u);
}

// Ten chunks of the slabs: the index finds every entry, and nothing moved
// (an entry's address and its key's view taken early stay valid).
TEST_F(WindowCacheTest, TheIndexSurvivesTheSlabGrowing) {
  std::vector<uint32_t> slots;
  slots.push_back(Insert("user-0", 0, 0));
  const CacheEntry* first = &cache_.entry(slots[0]);
  const std::string_view first_key = cache_.KeyOf(slots[0]);
  for (int i = 1; i < 10'000; ++i) {
    slots.push_back(Insert(absl::StrCat("user-", i), i % 7, i % 2));
  }
  EXPECT_EQ(cache_.slot_count(), 10'000u);
  EXPECT_EQ(&cache_.entry(slots[0]), first);
  EXPECT_EQ(cache_.KeyOf(slots[0]).data(), first_key.data());
  EXPECT_EQ(first_key, "user-0");
  for (int i = 0; i < 10'000; ++i) {
    ASSERT_THAT(cache_.Find(absl::StrCat("user-", i), i % 7, i % 2),
                Optional(slots[i]));
  }
  EXPECT_EQ(cache_.live(), 10'000u);
}

TEST_F(WindowCacheTest, AFreedSlotIsReusedWithANewGeneration) {
  const uint32_t slot = Insert("a", 0);
  const SlotRef old_ref = cache_.RefOf(slot);
  EXPECT_TRUE(cache_.Valid(old_ref));

  cache_.Erase(slot);
  EXPECT_FALSE(cache_.Valid(old_ref));
  EXPECT_EQ(cache_.Find("a", 0, 0), std::nullopt);
  EXPECT_EQ(cache_.live(), 0u);

  const uint32_t reused = Insert("b", 60'000);
  ASSERT_EQ(reused, slot);
  // A reference taken for the old window stays stale in the reused slot.
  EXPECT_FALSE(cache_.Valid(old_ref));
  const SlotRef new_ref = cache_.RefOf(reused);
  EXPECT_EQ(new_ref.generation, old_ref.generation + 1);
  EXPECT_TRUE(cache_.Valid(new_ref));
  EXPECT_THAT(cache_.Find("b", 60'000, 0), Optional(reused));
  EXPECT_EQ(cache_.Find("a", 0, 0), std::nullopt);
}

TEST_F(WindowCacheTest, InsertResetsAReusedSlot) {
  const uint32_t slot = Insert("a", 0, 0, /*acc_words=*/6);
  CacheEntry& e = cache_.entry(slot);
  e.dirty = e.in_backend = e.pinned = e.reemit = true;
  e.timer.set = true;
  e.max_offset = 99;
  cache_.Erase(slot);
  ASSERT_EQ(Insert("b", 0, 1, /*acc_words=*/1), slot);
  EXPECT_FALSE(e.dirty);
  EXPECT_FALSE(e.in_backend);
  EXPECT_FALSE(e.pinned);
  EXPECT_FALSE(e.reemit);
  EXPECT_FALSE(e.timer.set);
  EXPECT_EQ(e.max_offset, -1);
  EXPECT_EQ(e.group, 1);
  EXPECT_EQ(e.acc.size(), 1u);
}

// CLOCK: the hand clears the referenced bit of what it passes; an entry
// folded into since then gets a second chance.
TEST_F(WindowCacheTest, EvictionGivesReferencedEntriesASecondChance) {
  for (int i = 0; i < 4; ++i) Insert(absl::StrCat("k", i), 0);
  // Every entry is freshly referenced: one turn clears the bits, then the
  // first one goes.
  EXPECT_THAT(Evict(1), ElementsAre(0u));
  cache_.entry(1).referenced = true;  // folded into
  EXPECT_THAT(Evict(1), ElementsAre(2u));
  EXPECT_THAT(Evict(1), ElementsAre(3u));
  // Slot 1 had its second chance when the hand passed it.
  EXPECT_THAT(Evict(1), ElementsAre(1u));
  EXPECT_EQ(cache_.live(), 0u);
  EXPECT_THAT(Evict(1), ElementsAre());
}

TEST_F(WindowCacheTest, EvictionTakesTheColdestFirstUpToTheTarget) {
  for (int i = 0; i < 10; ++i) {
    cache_.entry(Insert(absl::StrCat("k", i), 0)).referenced = false;
  }
  cache_.entry(1).referenced = true;
  EXPECT_THAT(Evict(3), ElementsAre(0u, 2u, 3u));
  EXPECT_EQ(cache_.live(), 7u);
  EXPECT_TRUE(cache_.Contains("k1", 0, 0));
}

TEST_F(WindowCacheTest, PinnedAndQueuedEntriesAreNeverEvicted) {
  const uint32_t pinned = Insert("pinned", 0);
  const uint32_t queued = Insert("queued", 0);
  Insert("plain", 0);
  cache_.entry(pinned).pinned = true;
  cache_.entry(queued).reemit = true;
  EXPECT_THAT(Evict(3), ElementsAre(2u));
  // Nothing more can go: the sweep ends instead of spinning.
  EXPECT_THAT(Evict(3), ElementsAre());
  EXPECT_TRUE(cache_.Contains("pinned", 0, 0));
  EXPECT_TRUE(cache_.Contains("queued", 0, 0));
  cache_.entry(pinned).pinned = false;
  EXPECT_THAT(Evict(3), ElementsAre(pinned));
}

TEST_F(WindowCacheTest, AnEvictionErrorStopsTheSweep) {
  Insert("a", 0);
  Insert("b", 0);
  int calls = 0;
  absl::Status s = cache_.EvictSome(2, [&](uint32_t) {
    ++calls;
    return absl::UnavailableError("backend down");
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(cache_.live(), 2u);
}

TEST_F(WindowCacheTest, TheSpillHorizonSaysWhatIsCompleteInMemory) {
  EXPECT_EQ(cache_.horizon(0), kMinEventTime);
  EXPECT_TRUE(cache_.CompleteInMemory(0, kMinEventTime + 1));
  EXPECT_TRUE(cache_.CompleteInMemory(0, 0));

  cache_.NoteSpilled(0, 120'000);
  EXPECT_EQ(cache_.horizon(0), 120'000);
  EXPECT_FALSE(cache_.CompleteInMemory(0, 60'000));
  EXPECT_FALSE(cache_.CompleteInMemory(0, 120'000));
  EXPECT_TRUE(cache_.CompleteInMemory(0, 180'000));
  // Per group.
  EXPECT_TRUE(cache_.CompleteInMemory(1, 60'000));
  // Only ever grows.
  cache_.NoteSpilled(0, 60'000);
  EXPECT_EQ(cache_.horizon(0), 120'000);

  // An entry inserted at or below the horizon is not complete: the backend
  // may hold part of its window.
  EXPECT_FALSE(cache_.entry(Insert("a", 60'000, 0)).complete);
  EXPECT_TRUE(cache_.entry(Insert("a", 180'000, 0)).complete);
  EXPECT_TRUE(cache_.entry(Insert("a", 60'000, 1)).complete);

  cache_.set_horizon(1, 7);
  EXPECT_EQ(cache_.horizon(1), 7);
  EXPECT_FALSE(cache_.CompleteInMemory(1, 7));
}

// The per-key index: one node per key lists every group's windows.
TEST_F(WindowCacheTest, OneKeyNodeListsTheWindowsOfEveryGroup) {
  const uint32_t minute = Insert("user-1", 60'000, 0);
  const uint32_t hour = Insert("user-1", 0, 1);
  const uint32_t next_minute = Insert("user-1", 120'000, 0);
  Insert("user-2", 60'000, 0);
  EXPECT_EQ(cache_.live_keys(), 2u);

  std::optional<uint32_t> node = cache_.FindKey("user-1");
  ASSERT_TRUE(node.has_value());
  EXPECT_THAT(cache_.FindIn(*node, 60'000, 0), Optional(minute));
  EXPECT_THAT(cache_.FindIn(*node, 0, 1), Optional(hour));
  EXPECT_THAT(cache_.FindIn(*node, 120'000, 0), Optional(next_minute));
  EXPECT_EQ(cache_.FindIn(*node, 0, 0), std::nullopt);
  EXPECT_EQ(cache_.FindIn(*node, 60'000, 1), std::nullopt);
  EXPECT_EQ(cache_.node(*node).windows.size(), 3u);
  for (uint32_t slot : {minute, hour, next_minute}) {
    EXPECT_EQ(cache_.entry(slot).key_node, *node);
  }

  // Erasing one window leaves the others findable.
  cache_.Erase(hour);
  EXPECT_EQ(cache_.Find("user-1", 0, 1), std::nullopt);
  EXPECT_THAT(cache_.Find("user-1", 60'000, 0), Optional(minute));
  EXPECT_THAT(cache_.Find("user-1", 120'000, 0), Optional(next_minute));
  EXPECT_EQ(cache_.node(*node).windows.size(), 2u);
}

// Evicting every window of a key frees its node; a node reused for another
// key does not answer for the old one.
TEST_F(WindowCacheTest, EvictingAKeysLastWindowFreesItsNode) {
  for (int g = 0; g < 2; ++g) {
    for (int64_t start = 0; start < 3 * 60'000; start += 60'000) {
      cache_.entry(Insert("gone", start, g)).referenced = false;
    }
  }
  const uint32_t kept = Insert("kept", 0);
  EXPECT_EQ(cache_.live_keys(), 2u);
  EXPECT_THAT(Evict(6), ::testing::SizeIs(6));
  EXPECT_EQ(cache_.FindKey("gone"), std::nullopt);
  EXPECT_EQ(cache_.live_keys(), 1u);
  EXPECT_THAT(cache_.Find("kept", 0, 0), Optional(kept));

  const uint32_t fresh = Insert("fresh", 0, 1);
  EXPECT_EQ(cache_.KeyOf(fresh), "fresh");
  EXPECT_EQ(cache_.Find("gone", 0, 1), std::nullopt);
  EXPECT_EQ(cache_.live_keys(), 2u);
}

// A held node survives losing its last window (eviction to make room for
// the key's next window) and is freed on release if still empty.
TEST_F(WindowCacheTest, AHeldNodeOutlivesItsWindows) {
  const uint32_t node = cache_.Hold("user-1");
  EXPECT_THAT(cache_.FindKey("user-1"), Optional(node));
  const uint32_t first = cache_.Insert(node, 0, Window{0, 60'000},
                                       /*complete=*/true, 1, 0);
  cache_.Erase(first);
  EXPECT_THAT(cache_.FindKey("user-1"), Optional(node));
  const uint32_t second = cache_.Insert(node, 1, Window{0, 60'000},
                                        /*complete=*/true, 1, 0);
  // Holding again counts: one release does not free it.
  EXPECT_EQ(cache_.Hold("user-1"), node);
  cache_.Release(node);
  cache_.Erase(second);
  EXPECT_THAT(cache_.FindKey("user-1"), Optional(node));
  cache_.Release(node);
  EXPECT_EQ(cache_.FindKey("user-1"), std::nullopt);
  EXPECT_EQ(cache_.live_keys(), 0u);

  // A node with windows stays after its release.
  const uint32_t other = cache_.Hold("user-2");
  cache_.Insert(other, 0, Window{0, 60'000}, /*complete=*/true, 1, 0);
  cache_.Release(other);
  EXPECT_TRUE(cache_.Contains("user-2", 0, 0));
}

// The cache's byte count: an entry and a key node each, plus the heap of a
// key longer than its inline room, of a long window list and of a large
// accumulator block. Freeing gives the key's heap back; a slot keeps its
// block for the next entry, and the count says so.
TEST_F(WindowCacheTest, MemoryBytesCountsEntriesKeysAndTheirHeap) {
  EXPECT_EQ(cache_.MemoryBytes(), 0u);
  const size_t per_key = sizeof(KeyNode) + WindowCache::kIndexBytesPerKey;
  const uint32_t a = Insert("short", 0);
  EXPECT_EQ(cache_.MemoryBytes(), sizeof(CacheEntry) + per_key);
  cache_.Erase(a);
  EXPECT_EQ(cache_.MemoryBytes(), 0u);

  const std::string long_key(40, 'k');
  std::vector<uint32_t> slots;
  for (int i = 0; i < 7; ++i) slots.push_back(Insert(long_key, i * 60'000));
  // Seven windows outgrow the six the node holds inline.
  const size_t list_heap =
      cache_.node(*cache_.FindKey(long_key)).windows.capacity() *
      sizeof(WindowRef);
  EXPECT_GE(list_heap, 7 * sizeof(WindowRef));
  EXPECT_EQ(cache_.MemoryBytes(), 7 * sizeof(CacheEntry) + per_key +
                                      (long_key.size() + 1) + list_heap);
  for (uint32_t slot : slots) cache_.Erase(slot);
  EXPECT_EQ(cache_.MemoryBytes(), 0u);

  // A 10-word block is on the heap, and stays with its slot.
  const uint32_t big = Insert("big", 0, /*group=*/0, /*acc_words=*/10);
  const size_t block = cache_.entry(big).acc.capacity() * sizeof(uint64_t);
  EXPECT_GE(block, 10 * sizeof(uint64_t));
  EXPECT_EQ(cache_.MemoryBytes(), sizeof(CacheEntry) + per_key + block);
  cache_.Erase(big);
  EXPECT_EQ(cache_.MemoryBytes(), block);
  const uint32_t reused = Insert("next", 0);
  EXPECT_EQ(reused, big);
  EXPECT_EQ(cache_.MemoryBytes(), sizeof(CacheEntry) + per_key + block);
}

// The slabs grow a chunk at a time: the 1,025th entry takes a second chunk
// of entries, nothing more.
TEST_F(WindowCacheTest, SlabsGrowAChunkAtATime) {
  EXPECT_EQ(cache_.SlabBytes(), 0u);
  for (int i = 0; i < 1024; ++i) Insert("k", i * 60'000);
  const size_t full = cache_.SlabBytes();
  EXPECT_GE(full, 1024 * sizeof(CacheEntry) + 1024 * sizeof(KeyNode));
  Insert("k", 1024 * 60'000);
  EXPECT_GE(cache_.SlabBytes(), full + 1024 * sizeof(CacheEntry));
  EXPECT_LE(cache_.SlabBytes(), full + 1024 * sizeof(CacheEntry) + 64);
}

// ShrinkEntries gives back the last chunks once enough slots are free:
// their live entries move down, keep their key, window and accumulators,
// are found through their key, and take the generation of the slot they
// move to; references to the slots given back stay stale, also once the
// slab grows over them again.
TEST_F(WindowCacheTest, ShrinkingMovesTheLastChunksEntriesDown) {
  const size_t chunk = cache_.chunk_slots();
  std::vector<uint32_t> slots;
  for (size_t i = 0; i < 3 * chunk; ++i) {
    slots.push_back(Insert(absl::StrCat("k", i), 0));
    cache_.entry(slots.back()).acc[0] = i;
  }
  // Free all but every 100th entry.
  std::vector<size_t> kept;
  for (size_t i = 0; i < slots.size(); ++i) {
    if (i % 100 == 0) {
      kept.push_back(i);
    } else {
      cache_.Erase(slots[i]);
    }
  }
  // The last kept entry sits in the last chunk: it moves.
  ASSERT_GE(slots[kept.back()], 2 * chunk);
  const SlotRef last = cache_.RefOf(slots[kept.back()]);
  const size_t held = cache_.HeldBytes();
  std::vector<std::pair<uint32_t, uint32_t>> moves;
  const size_t moved = cache_.ShrinkEntries(
      /*keep_free=*/0, [](uint32_t) { return true; },
      [&](uint32_t from, uint32_t to) { moves.emplace_back(from, to); });
  // The kept entries fit in one chunk: two chunks go, with their entries.
  EXPECT_EQ(cache_.slot_count(), chunk);
  EXPECT_EQ(cache_.HeldBytes(), held - 2 * chunk * sizeof(CacheEntry));
  EXPECT_EQ(moved, moves.size());
  size_t above = 0;
  for (size_t i : kept) above += slots[i] >= chunk;
  EXPECT_EQ(moves.size(), above);
  EXPECT_EQ(cache_.live(), kept.size());
  for (size_t i : kept) {
    const std::optional<uint32_t> slot =
        cache_.Find(absl::StrCat("k", i), 0, 0);
    ASSERT_TRUE(slot.has_value()) << i;
    EXPECT_LT(*slot, chunk);
    EXPECT_EQ(cache_.entry(*slot).acc[0], i);
    EXPECT_EQ(cache_.KeyOf(*slot), absl::StrCat("k", i));
    EXPECT_TRUE(cache_.Valid(cache_.RefOf(*slot)));
  }
  for (const auto& [from, to] : moves) {
    EXPECT_GE(from, chunk);
    EXPECT_LT(to, chunk);
  }
  // The moved entry's old reference is stale, now and after the slab grows
  // over its slot again.
  EXPECT_FALSE(cache_.Valid(last));
  for (size_t i = 0; i < 3 * chunk; ++i) Insert(absl::StrCat("n", i), 0);
  ASSERT_GT(cache_.slot_count(), last.slot);
  EXPECT_FALSE(cache_.Valid(last));
}

// A chunk holding an entry that must not move stays, and so do the chunks
// below it; with fewer free slots than `keep_free` and a chunk, nothing
// moves.
TEST_F(WindowCacheTest, ShrinkingStopsAtAnEntryThatMustNotMove) {
  const size_t chunk = cache_.chunk_slots();
  std::vector<uint32_t> slots;
  for (size_t i = 0; i < 3 * chunk; ++i) {
    slots.push_back(Insert(absl::StrCat("k", i), 0));
  }
  for (size_t i = 1; i < slots.size(); ++i) {
    if (i != chunk + 5) cache_.Erase(slots[i]);
  }
  cache_.entry(slots[chunk + 5]).pinned = true;
  auto movable = [&](uint32_t slot) { return !cache_.entry(slot).pinned; };
  size_t calls = 0;
  auto moved = [&](uint32_t, uint32_t) { ++calls; };
  EXPECT_EQ(cache_.ShrinkEntries(/*keep_free=*/0, movable, moved), 0u);
  EXPECT_EQ(cache_.slot_count(), 2 * chunk);
  EXPECT_EQ(cache_.entry(slots[chunk + 5]).start, 0);
  EXPECT_TRUE(cache_.Contains(absl::StrCat("k", chunk + 5), 0, 0));
  EXPECT_EQ(calls, 0u);
  // 2 * chunk - 2 slots are free: keeping as many free, nothing goes.
  cache_.entry(slots[chunk + 5]).pinned = false;
  EXPECT_EQ(cache_.ShrinkEntries(2 * chunk - 2, movable, moved), 0u);
  EXPECT_EQ(cache_.slot_count(), 2 * chunk);
  EXPECT_EQ(cache_.ShrinkEntries(/*keep_free=*/0, movable, moved), 1u);
  EXPECT_EQ(cache_.slot_count(), chunk);
  EXPECT_EQ(calls, 1u);
  EXPECT_TRUE(cache_.Contains(absl::StrCat("k", chunk + 5), 0, 0));
}

// ShrinkKeys gives back the node slab's last chunks: their nodes move
// down, the index finds each key at its new node and every entry names
// it; a held node does not move, and its chunk stays.
TEST_F(WindowCacheTest, ShrinkingMovesTheLastChunksNodesDown) {
  const size_t chunk = cache_.chunk_slots();
  for (size_t i = 0; i < 3 * chunk; ++i) {
    Insert(absl::StrCat("k", i), 0);
    Insert(absl::StrCat("k", i), 60'000, /*group=*/1);
  }
  // Keep every 100th key's windows; the rest go with their nodes.
  for (size_t i = 0; i < 3 * chunk; ++i) {
    if (i % 100 == 0) continue;
    const std::string key = absl::StrCat("k", i);
    cache_.Erase(*cache_.Find(key, 0, 0));
    cache_.Erase(*cache_.Find(key, 60'000, 1));
  }
  const std::string last_key = absl::StrCat("k", (3 * chunk - 1) / 100 * 100);
  ASSERT_GE(*cache_.FindKey(last_key), 2 * chunk);
  // Held, the last key's node keeps its chunk (and the one below).
  const uint32_t held = cache_.Hold(last_key);
  const size_t slab = cache_.SlabBytes();
  EXPECT_EQ(cache_.ShrinkKeys(/*keep_free=*/0), 0u);
  EXPECT_EQ(cache_.SlabBytes(), slab);
  cache_.Release(held);
  const size_t moved = cache_.ShrinkKeys(/*keep_free=*/0);
  EXPECT_GT(moved, 0u);
  EXPECT_LT(cache_.SlabBytes(), slab);
  EXPECT_EQ(cache_.live_keys(), (3 * chunk + 99) / 100);
  for (size_t i = 0; i < 3 * chunk; i += 100) {
    const std::string key = absl::StrCat("k", i);
    const std::optional<uint32_t> node = cache_.FindKey(key);
    ASSERT_TRUE(node.has_value()) << key;
    EXPECT_LT(*node, chunk);
    for (const auto& [start, group] :
         {std::pair<int64_t, uint16_t>{0, 0}, {60'000, 1}}) {
      const std::optional<uint32_t> slot = cache_.FindIn(*node, start, group);
      ASSERT_TRUE(slot.has_value()) << key;
      EXPECT_EQ(cache_.entry(*slot).key_node, *node);
      EXPECT_EQ(cache_.KeyOf(*slot), key);
    }
  }
  // A new key after the shrink gets a node of its own.
  Insert("new", 0);
  EXPECT_EQ(cache_.KeyOf(*cache_.Find("new", 0, 0)), "new");
  EXPECT_EQ(cache_.KeyOf(*cache_.Find(last_key, 0, 0)), last_key);
}

// ShrinkBy gives back whole chunks of free slots, as few as cover the
// bytes asked for, and keeps the other free slots for the next windows;
// nodes go only if the entries' chunks do not cover it. A slot taken again
// adds nothing to what the cache holds (EntryGrowthBytes), one past the
// committed chunks a chunk.
TEST_F(WindowCacheTest, ShrinkByGivesBackOnlyWhatItIsAskedFor) {
  const size_t chunk = cache_.chunk_slots();
  const size_t chunk_bytes = chunk * sizeof(CacheEntry);
  std::vector<uint32_t> slots;
  for (size_t i = 0; i < 4 * chunk; ++i) {
    slots.push_back(Insert(absl::StrCat("k", i), 0));
  }
  EXPECT_EQ(cache_.EntryGrowthBytes(), chunk_bytes);
  // Free three chunks' worth, spread over the slab (one key in four stays).
  for (size_t i = 0; i < slots.size(); ++i) {
    if (i % 4 != 0) cache_.Erase(slots[i]);
  }
  EXPECT_EQ(cache_.EntryGrowthBytes(), 0u);
  auto movable = [](uint32_t) { return true; };
  auto moved = [](uint32_t, uint32_t) {};
  const size_t slabs = cache_.SlabBytes();
  const size_t given = cache_.chunks_given_back();
  // One byte: one chunk of entries, no node.
  cache_.ShrinkBy(1, /*keep_free=*/0, movable, moved);
  EXPECT_EQ(cache_.SlabBytes(), slabs - chunk_bytes);
  EXPECT_EQ(cache_.chunks_given_back(), given + 1);
  EXPECT_EQ(cache_.slot_count(), 3 * chunk);
  // A chunk and a byte: two more.
  cache_.ShrinkBy(chunk_bytes + 1, /*keep_free=*/0, movable, moved);
  EXPECT_EQ(cache_.slot_count(), chunk);
  EXPECT_EQ(cache_.SlabBytes(), slabs - 3 * chunk_bytes);
  EXPECT_EQ(cache_.live(), chunk);
  // No free slot is left, so a new window commits a chunk; the free nodes
  // go once no entry chunk can, as far as each slab keeps `keep_free`.
  EXPECT_EQ(cache_.EntryGrowthBytes(), chunk_bytes);
  const size_t before_nodes = cache_.SlabBytes();
  cache_.ShrinkBy(1, /*keep_free=*/3 * chunk, movable, moved);
  EXPECT_EQ(cache_.SlabBytes(), before_nodes);
  cache_.ShrinkBy(1, /*keep_free=*/0, movable, moved);
  EXPECT_LT(cache_.SlabBytes(), before_nodes);
  EXPECT_EQ(cache_.live_keys(), chunk);
  for (size_t i = 0; i < slots.size(); i += 4) {
    EXPECT_TRUE(cache_.Contains(absl::StrCat("k", i), 0, 0)) << i;
  }
}

// A small byte bound makes small chunks: a chunk of entries is at most a
// sixteenth of it (and at least 16 entries), a chunk of nodes as many.
TEST(WindowCacheChunkTest, ASmallBoundMakesSmallChunks) {
  WindowCache cache(/*groups=*/1, /*max_bytes=*/64 << 10);
  cache.Insert(0, "k", Window{0, 60'000}, /*complete=*/true, 1, 0);
  EXPECT_LE(cache.SlabBytes(), (64 << 10) / 4);
}

// A slab's elements stay where they are as it grows, it commits a chunk at
// a time, and elements taken again after a shrink start default-made.
TEST(ChunkedSlabTest, ElementsStayPutAndComeBackDefault) {
  ChunkedSlab<uint64_t> slab(/*chunk_bits=*/10, /*capacity=*/4096);
  ASSERT_TRUE(slab.reserved());
  EXPECT_EQ(slab.AllocatedBytes(), 0u);
  std::vector<uint64_t*> addresses;
  for (size_t i = 0; i < 2048; ++i) {
    ASSERT_EQ(slab.Grow(), i);
    slab[i] = i + 1;
    addresses.push_back(&slab[i]);
  }
  EXPECT_EQ(slab.AllocatedBytes(), 2048 * sizeof(uint64_t));
  for (size_t i = 0; i < 2048; ++i) {
    EXPECT_EQ(&slab[i], addresses[i]);
    EXPECT_EQ(slab[i], i + 1);
  }
  slab.ShrinkTo(1024);
  EXPECT_EQ(slab.AllocatedBytes(), 1024 * sizeof(uint64_t));
  EXPECT_EQ(slab[1023], 1024u);
  ASSERT_EQ(slab.Grow(), 1024u);
  EXPECT_EQ(slab[1024], 0u);
  EXPECT_EQ(&slab[1024], addresses[1024]);
}

// Growing past the capacity fails as an allocation does, and a slab whose
// address space cannot be reserved says so (2^50 bytes: more than a
// process's address space).
TEST(ChunkedSlabTest, CapacityBoundsGrowth) {
  ChunkedSlab<uint64_t> slab(/*chunk_bits=*/4, /*capacity=*/20);
  for (size_t i = 0; i < 20; ++i) slab.Grow();
  EXPECT_THROW(slab.Grow(), std::bad_alloc);
  EXPECT_EQ(slab.size(), 20u);

  struct Mebibyte {
    char bytes[1 << 20];
  };
  ChunkedSlab<Mebibyte> huge(/*chunk_bits=*/4, /*capacity=*/size_t{1} << 30);
  EXPECT_FALSE(huge.reserved());
}

}  // namespace
}  // namespace weir::internal
