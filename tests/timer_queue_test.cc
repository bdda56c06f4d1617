#include "weir/internal/timer_queue.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/time.h"

namespace weir::internal {
namespace {

using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

// Slots with their handles, as the cache keeps them.
class TimerQueueTest : public ::testing::Test {
 protected:
  TimerQueueTest() : handles_(16) {}

  auto HandleOf() {
    return [this](uint32_t slot) { return &handles_[slot]; };
  }
  void Add(bool cleanup, EventTime when, uint32_t slot) {
    queue_.Add(cleanup, when, SlotRef{slot, 0}, &handles_[slot]);
  }
  void Remove(uint32_t slot) { queue_.Remove(&handles_[slot], HandleOf()); }
  // The earliest bucket, in the order of adding (TakeLast gives its
  // reverse).
  std::vector<uint32_t> TakeFirst(bool cleanup) {
    std::vector<uint32_t> slots;
    for (size_t n = queue_.FirstSize(cleanup); n > 0; --n) {
      const SlotRef r = queue_.TakeLast(cleanup, HandleOf());
      EXPECT_FALSE(handles_[r.slot].set);
      slots.push_back(r.slot);
    }
    std::reverse(slots.begin(), slots.end());
    return slots;
  }

  std::vector<TimerHandle> handles_;
  TimerQueue queue_;
};

TEST_F(TimerQueueTest, BucketsComeOutInTimeOrder) {
  Add(false, 30, 0);
  Add(false, 10, 1);
  Add(false, 20, 2);
  Add(false, 10, 3);
  Add(false, -5, 4);
  EXPECT_EQ(queue_.Earliest(), -5);
  EXPECT_THAT(TakeFirst(false), ElementsAre(4));
  EXPECT_THAT(TakeFirst(false), ElementsAre(1, 3));  // order of adding
  EXPECT_THAT(TakeFirst(false), ElementsAre(2));
  EXPECT_THAT(TakeFirst(false), ElementsAre(0));
  EXPECT_TRUE(queue_.empty());
  EXPECT_EQ(queue_.Earliest(), kMaxEventTime);
}

// One reference at a time, last added first; a caller may stop after any
// of them, add and remove others, and go on.
TEST_F(TimerQueueTest, TakeLastGivesABucketBackwardsOneAtATime) {
  Add(false, 10, 0);
  Add(false, 10, 1);
  Add(false, 10, 2);
  Add(false, 20, 3);
  EXPECT_EQ(queue_.FirstSize(false), 3u);
  EXPECT_EQ(queue_.TakeLast(false, HandleOf()).slot, 2u);
  EXPECT_FALSE(handles_[2].set);
  EXPECT_TRUE(handles_[1].set);
  EXPECT_EQ(queue_.FirstSize(false), 2u);
  Remove(0);  // slot 1 moves into its place
  Add(false, 10, 5);
  EXPECT_EQ(queue_.TakeLast(false, HandleOf()).slot, 5u);
  EXPECT_EQ(queue_.TakeLast(false, HandleOf()).slot, 1u);
  // The emptied bucket is gone, and so is the memory of it as last used.
  EXPECT_EQ(queue_.Earliest(), 20);
  Add(false, 10, 6);
  EXPECT_EQ(queue_.Earliest(), 10);
  EXPECT_EQ(queue_.TakeLast(false, HandleOf()).slot, 6u);
  EXPECT_EQ(queue_.TakeLast(false, HandleOf()).slot, 3u);
  EXPECT_TRUE(queue_.empty());
}

TEST_F(TimerQueueTest, DueMeansABucketAtOrBeforeTheTime) {
  EXPECT_FALSE(queue_.Due(false, kMaxEventTime));
  Add(false, 100, 0);
  EXPECT_FALSE(queue_.Due(false, 99));
  EXPECT_TRUE(queue_.Due(false, 100));
  EXPECT_TRUE(queue_.Due(false, 101));
  EXPECT_FALSE(queue_.Due(true, 101));  // the cleanup queue is separate
}

TEST_F(TimerQueueTest, FireAndCleanupQueuesAreSeparate) {
  Add(false, 50, 0);
  Add(true, 20, 1);
  Add(true, 50, 2);
  EXPECT_EQ(queue_.Earliest(), 20);
  EXPECT_THAT(TakeFirst(false), ElementsAre(0));
  EXPECT_EQ(queue_.Earliest(), 20);
  EXPECT_THAT(TakeFirst(true), ElementsAre(1));
  EXPECT_THAT(TakeFirst(true), ElementsAre(2));
  EXPECT_TRUE(queue_.empty());
}

TEST_F(TimerQueueTest, HandlesSayWhereEachTimerIs) {
  Add(true, 7, 0);
  Add(true, 7, 1);
  EXPECT_TRUE(handles_[1].set);
  EXPECT_TRUE(handles_[1].cleanup);
  EXPECT_EQ(handles_[1].time, 7);
  EXPECT_EQ(handles_[1].pos, 1u);
  TakeFirst(true);
  EXPECT_FALSE(handles_[0].set);
  EXPECT_FALSE(handles_[1].set);
}

TEST_F(TimerQueueTest, RemoveMovesTheLastReferenceIntoThePlace) {
  for (uint32_t slot = 0; slot < 4; ++slot) Add(false, 10, slot);
  Remove(1);
  EXPECT_FALSE(handles_[1].set);
  EXPECT_EQ(handles_[3].pos, 1u);  // moved into slot 1's place
  Remove(3);                       // its handle was kept up to date
  Remove(1);                       // no timer: nothing happens
  EXPECT_THAT(TakeFirst(false), UnorderedElementsAre(0, 2));
  EXPECT_TRUE(queue_.empty());
}

TEST_F(TimerQueueTest, RemovingTheLastReferenceDropsTheBucket) {
  Add(false, 10, 0);
  Add(false, 20, 1);
  Remove(0);
  EXPECT_EQ(queue_.Earliest(), 20);
  EXPECT_FALSE(queue_.Due(false, 15));
  // The bucket of 10 was also the last used one: adding to it again must
  // make a new bucket, not touch the erased one.
  Add(false, 10, 2);
  Add(false, 10, 3);
  EXPECT_THAT(TakeFirst(false), ElementsAre(2, 3));
  EXPECT_THAT(TakeFirst(false), ElementsAre(1));
}

TEST_F(TimerQueueTest, TakingTheLastUsedBucketForgetsIt) {
  Add(false, 10, 0);
  TakeFirst(false);
  Add(false, 10, 1);
  Add(false, 5, 2);
  Add(false, 10, 3);
  EXPECT_THAT(TakeFirst(false), ElementsAre(2));
  EXPECT_THAT(TakeFirst(false), ElementsAre(1, 3));
}

TEST_F(TimerQueueTest, ReaddingAfterRemoveMovesATimer) {
  Add(false, 100, 0);
  Remove(0);
  Add(true, 200, 0);
  EXPECT_FALSE(queue_.Due(false, kMaxEventTime));
  EXPECT_TRUE(queue_.Due(true, 200));
  EXPECT_THAT(TakeFirst(true), ElementsAre(0));
}

TEST_F(TimerQueueTest, ExtremeTimesOrder) {
  Add(false, kMaxEventTime, 0);
  Add(false, kMinEventTime, 1);
  EXPECT_EQ(queue_.Earliest(), kMinEventTime);
  EXPECT_THAT(TakeFirst(false), ElementsAre(1));
  EXPECT_TRUE(queue_.Due(false, kMaxEventTime));
  EXPECT_THAT(TakeFirst(false), ElementsAre(0));
}

}  // namespace
}  // namespace weir::internal
