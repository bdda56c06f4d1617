#include "weir/heavy_hitters.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "weir/internal/string_view.h"

namespace weir {
namespace {

using internal::Sv;

// Larger count first, then smaller key: the order of Top() and of the keys a
// merge keeps.
template <typename A, typename B>
bool RanksBefore(uint64_t count_a, const A& key_a, uint64_t count_b,
                 const B& key_b) {
  if (count_a != count_b) return count_a > count_b;
  return key_a < key_b;
}

}  // namespace

HeavyHitters::HeavyHitters(size_t capacity)
    : capacity_(std::max<size_t>(capacity, 1)) {
  entries_.reserve(capacity_);
  heap_.reserve(capacity_);
}

HeavyHitters::HeavyHitters(const HeavyHitters& other)
    : capacity_(other.capacity_),
      total_weight_(other.total_weight_),
      entries_(other.entries_) {
  Rebuild();
}

HeavyHitters& HeavyHitters::operator=(const HeavyHitters& other) {
  if (this != &other) {
    capacity_ = other.capacity_;
    total_weight_ = other.total_weight_;
    entries_ = other.entries_;
    Rebuild();
  }
  return *this;
}

void HeavyHitters::Add(std::string_view key, uint64_t weight) {
  if (weight == 0) return;
  total_weight_ += weight;
  auto it = entries_.find(Sv(key));
  if (it != entries_.end()) {
    it->second.count += weight;
    SiftDown(it->second.heap_index);
    return;
  }
  if (heap_.size() < capacity_) {
    auto [inserted, unused] = entries_.emplace(
        std::string(key), Entry{weight, /*error=*/0, heap_.size()});
    heap_.push_back(&*inserted);
    SiftUp(heap_.size() - 1);
    return;
  }
  // Full: the new key replaces the one with the smallest count, whose count
  // bounds how often the new key may have occurred before.
  uint64_t min = heap_[0]->second.count;
  entries_.erase(heap_[0]->first);
  auto [inserted, unused] =
      entries_.emplace(std::string(key), Entry{min + weight, min, 0});
  heap_[0] = &*inserted;
  SiftDown(0);
}

std::vector<HeavyHitter> HeavyHitters::Top(size_t n) const {
  std::vector<const Node*> order(heap_.begin(), heap_.end());
  n = std::min(n, order.size());
  std::partial_sort(order.begin(), order.begin() + n, order.end(),
                    [](const Node* a, const Node* b) {
                      return RanksBefore(a->second.count, a->first,
                                         b->second.count, b->first);
                    });
  std::vector<HeavyHitter> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(
        {order[i]->first, order[i]->second.count, order[i]->second.error});
  }
  return out;
}

std::optional<HeavyHitter> HeavyHitters::Find(std::string_view key) const {
  auto it = entries_.find(Sv(key));
  if (it == entries_.end()) return std::nullopt;
  return HeavyHitter{it->first, it->second.count, it->second.error};
}

absl::Status HeavyHitters::Merge(const HeavyHitters& other) {
  if (&other == this) {
    HeavyHitters copy(other);
    return Merge(copy);
  }
  if (other.capacity_ != capacity_) {
    return absl::InvalidArgumentError(
        absl::StrCat("HeavyHitters::Merge: capacity ", other.capacity_,
                     " differs from ", capacity_));
  }
  // A key a sketch does not monitor occurred at most its min_count() times
  // there (0 if it is not full); that bound is both its count and its error.
  const uint64_t own_min = min_count();
  const uint64_t other_min = other.min_count();
  std::vector<HeavyHitter> merged;
  merged.reserve(entries_.size() + other.entries_.size());
  for (const auto& [key, entry] : entries_) {
    auto it = other.entries_.find(key);
    if (it != other.entries_.end()) {
      merged.push_back({key, entry.count + it->second.count,
                        entry.error + it->second.error});
    } else {
      merged.push_back({key, entry.count + other_min, entry.error + other_min});
    }
  }
  for (const auto& [key, entry] : other.entries_) {
    if (entries_.contains(key)) continue;
    merged.push_back({key, entry.count + own_min, entry.error + own_min});
  }
  if (merged.size() > capacity_) {
    std::nth_element(merged.begin(), merged.begin() + capacity_, merged.end(),
                     [](const HeavyHitter& a, const HeavyHitter& b) {
                       return RanksBefore(a.count, a.key, b.count, b.key);
                     });
    merged.resize(capacity_);
  }
  entries_.clear();
  for (HeavyHitter& h : merged) {
    entries_.emplace(std::move(h.key), Entry{h.count, h.error, 0});
  }
  total_weight_ += other.total_weight_;
  Rebuild();
  return absl::OkStatus();
}

uint64_t HeavyHitters::min_count() const {
  if (heap_.size() < capacity_) return 0;
  return heap_[0]->second.count;
}

void HeavyHitters::Clear() {
  entries_.clear();
  heap_.clear();
  total_weight_ = 0;
}

void HeavyHitters::Swap(size_t a, size_t b) {
  std::swap(heap_[a], heap_[b]);
  heap_[a]->second.heap_index = a;
  heap_[b]->second.heap_index = b;
}

void HeavyHitters::SiftUp(size_t i) {
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (heap_[parent]->second.count <= heap_[i]->second.count) return;
    Swap(i, parent);
    i = parent;
  }
}

void HeavyHitters::SiftDown(size_t i) {
  const size_t n = heap_.size();
  while (true) {
    size_t smallest = i;
    size_t left = 2 * i + 1;
    size_t right = left + 1;
    if (left < n && heap_[left]->second.count < heap_[smallest]->second.count) {
      smallest = left;
    }
    if (right < n &&
        heap_[right]->second.count < heap_[smallest]->second.count) {
      smallest = right;
    }
    if (smallest == i) return;
    Swap(i, smallest);
    i = smallest;
  }
}

void HeavyHitters::Rebuild() {
  heap_.clear();
  heap_.reserve(capacity_);
  for (Node& node : entries_) {
    node.second.heap_index = heap_.size();
    heap_.push_back(&node);
  }
  for (size_t i = heap_.size() / 2; i-- > 0;) SiftDown(i);
}

}  // namespace weir
