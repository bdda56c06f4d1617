#include "weir/checkpointer.h"

#include <pthread.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "weir/env.h"
#include "weir/status_macros.h"

namespace weir {

// ---- AsyncCheckpointer
// --------------------------------------------------------

absl::Status CheckpointerOptions::Validate() const {
  if (interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "CheckpointerOptions.interval must be positive");
  }
  if (min_pause < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "CheckpointerOptions.min_pause must not be negative");
  }
  if (timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "CheckpointerOptions.timeout must be positive");
  }
  if (tolerated_failures < 0) {
    return absl::InvalidArgumentError(
        "CheckpointerOptions.tolerated_failures must not be negative");
  }
  if (retained < 1) {
    return absl::InvalidArgumentError(
        "CheckpointerOptions.retained must be at least 1");
  }
  if (clock == nullptr) {
    return absl::InvalidArgumentError("CheckpointerOptions.clock is null");
  }
  return absl::OkStatus();
}

// ---- UploadPool
// ---------------------------------------------------------------

UploadPool::UploadPool(int threads) {
  for (int i = 0; i < std::max(threads, 1); ++i) {
    threads_.emplace_back([this] { Run(); });
  }
}

UploadPool::~UploadPool() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  for (std::thread& t : threads_) t.join();
}

void UploadPool::Enqueue(AsyncCheckpointer* c) {
  absl::MutexLock lock(&mu_);
  if (std::find(queue_.begin(), queue_.end(), c) == queue_.end()) {
    queue_.push_back(c);
  }
}

void UploadPool::Forget(AsyncCheckpointer* c) {
  absl::MutexLock lock(&mu_);
  queue_.erase(std::remove(queue_.begin(), queue_.end(), c), queue_.end());
  auto not_running = [this, c]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return std::find(running_.begin(), running_.end(), c) == running_.end();
  };
  mu_.Await(absl::Condition(&not_running));
}

void UploadPool::Run() {
  pthread_setname_np(pthread_self(), "weir-ckpt-upld");
  while (true) {
    AsyncCheckpointer* c;
    {
      absl::MutexLock lock(&mu_);
      // The first queued checkpointer no thread is running: its previous
      // job (retention included) may still run after its completion was
      // delivered, and one checkpointer's jobs never overlap.
      std::deque<AsyncCheckpointer*>::iterator next;
      auto ready = [this, &next]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        if (stop_) return true;
        next = std::find_if(queue_.begin(), queue_.end(), [this](auto* q) {
          return std::find(running_.begin(), running_.end(), q) ==
                 running_.end();
        });
        return next != queue_.end();
      };
      mu_.Await(absl::Condition(&ready));
      if (stop_) return;
      c = *next;
      queue_.erase(next);
      running_.push_back(c);
    }
    c->RunPending();
    absl::MutexLock lock(&mu_);
    running_.erase(std::find(running_.begin(), running_.end(), c));
  }
}

// ---- AsyncCheckpointer
// --------------------------------------------------------

struct AsyncCheckpointer::Job {
  CheckpointRequest request;
  absl::Time submitted;
  std::shared_ptr<PublishControl> control;
  bool done = false;  // guarded by the checkpointer's mu_
  CheckpointCompletion completion;
};

AsyncCheckpointer::AsyncCheckpointer(CheckpointStore* store,
                                     const CheckpointerOptions& options)
    : store_(store), options_(options) {}

absl::StatusOr<std::unique_ptr<AsyncCheckpointer>> AsyncCheckpointer::Create(
    CheckpointStore* store, const CheckpointerOptions& options,
    UploadPool* pool) {
  if (store == nullptr) {
    return absl::InvalidArgumentError("AsyncCheckpointer: store is null");
  }
  WEIR_RETURN_IF_ERROR(options.Validate());
  std::unique_ptr<AsyncCheckpointer> c(new AsyncCheckpointer(store, options));
  if (pool == nullptr) {
    c->own_pool_ = std::make_unique<UploadPool>();
    pool = c->own_pool_.get();
  }
  c->pool_ = pool;
  return c;
}

AsyncCheckpointer::~AsyncCheckpointer() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    if (in_flight_ != nullptr) in_flight_->control->Abandon();
  }
  pool_->Forget(this);
  // The thread never reached the pending job.
  absl::MutexLock lock(&mu_);
  if (pending_ != nullptr && options_.remove_local_dir) {
    RemoveTree(store_->env(), pending_->request.local_dir).IgnoreError();
  }
}

absl::Status AsyncCheckpointer::Submit(CheckpointRequest request) {
  if (request.local_dir.empty()) {
    return absl::InvalidArgumentError("Submit: local_dir is empty");
  }
  if (request.savepoint_name.has_value()) {
    WEIR_RETURN_IF_ERROR(ValidateSavepointName(*request.savepoint_name));
  }
  auto job = std::make_shared<Job>();
  job->submitted = options_.clock->Now();
  job->control = std::make_shared<PublishControl>(
      options_.clock, job->submitted + options_.timeout);
  job->request = std::move(request);
  std::shared_ptr<Job> dropped;
  {
    absl::MutexLock lock(&mu_);
    if (stop_) return absl::FailedPreconditionError("checkpointer stopped");
    if (in_flight_ != nullptr) {
      return absl::FailedPreconditionError(absl::StrCat(
          "checkpoint ", in_flight_->request.metadata.checkpoint_id,
          " is still in flight; Poll() for its completion first"));
    }
    // A pending job the thread never reached was abandoned (it timed out
    // behind a stuck upload): drop it.
    dropped = std::move(pending_);
    in_flight_ = job;
    pending_ = job;
  }
  // A dropped job is still queued in the pool, which takes the new one in
  // its place.
  if (dropped == nullptr) pool_->Enqueue(this);
  if (dropped != nullptr && options_.remove_local_dir) {
    RemoveTree(store_->env(), dropped->request.local_dir).IgnoreError();
  }
  return absl::OkStatus();
}

std::optional<CheckpointCompletion> AsyncCheckpointer::Poll() {
  absl::MutexLock lock(&mu_);
  if (in_flight_ == nullptr) return std::nullopt;
  Job& job = *in_flight_;
  std::optional<CheckpointCompletion> out;
  if (job.done && !absl::IsCancelled(job.completion.status)) {
    out = std::move(job.completion);
  } else if (job.control->abandoned()) {
    CheckpointCompletion c;
    c.checkpoint_id = job.request.metadata.checkpoint_id;
    c.status = absl::DeadlineExceededError(absl::StrCat(
        "checkpoint ", c.checkpoint_id, " abandoned: not published within ",
        absl::FormatDuration(options_.timeout)));
    c.total_time = options_.clock->Now() - job.submitted;
    out = std::move(c);
  }
  if (out.has_value()) in_flight_ = nullptr;
  return out;
}

bool AsyncCheckpointer::in_flight() const {
  absl::MutexLock lock(&mu_);
  return in_flight_ != nullptr;
}

bool AsyncCheckpointer::WaitForIdle(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !busy_ && pending_ == nullptr;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&idle), timeout);
}

absl::Status AsyncCheckpointer::last_retain_status() const {
  absl::MutexLock lock(&mu_);
  return last_retain_status_;
}

void AsyncCheckpointer::RunPending() {
  std::shared_ptr<Job> job;
  {
    absl::MutexLock lock(&mu_);
    if (stop_ || pending_ == nullptr) return;
    job = std::move(pending_);
    busy_ = true;
  }
  RunJob(*job);
  absl::MutexLock lock(&mu_);
  busy_ = false;
}

void AsyncCheckpointer::RunJob(Job& job) {
  Clock* clock = options_.clock;
  CheckpointCompletion c;
  c.checkpoint_id = job.request.metadata.checkpoint_id;
  const absl::Time start = clock->Now();
  c.queue_time = start - job.submitted;
  absl::StatusOr<PublishResult> r =
      job.control->abandoned()
          ? absl::CancelledError("abandoned before its upload started")
          : store_->Publish(job.request.local_dir, job.request.metadata,
                            job.control.get());
  if (r.ok()) {
    c.files_uploaded = r->files_uploaded;
    c.bytes_uploaded = r->bytes_uploaded;
    c.files_reused = r->files_reused;
    c.bytes_reused = r->bytes_reused;
    c.scan_time = r->scan_time;
    c.upload_time = r->upload_time;
    c.manifest_time = r->manifest_time;
    c.manifest = std::move(r->manifest);
    if (job.request.savepoint_name.has_value()) {
      const absl::Time sp_start = absl::Now();
      c.status =
          store_->Savepoint(*job.request.savepoint_name, c.checkpoint_id);
      c.manifest_time += absl::Now() - sp_start;
    }
  } else {
    c.status = r.status();
  }
  if (options_.remove_local_dir) {
    RemoveTree(store_->env(), job.request.local_dir).IgnoreError();
  }
  c.total_time = clock->Now() - job.submitted;
  const bool published = c.manifest.has_value();
  {
    absl::MutexLock lock(&mu_);
    job.completion = std::move(c);
    job.done = true;
    if (stop_ || !published) return;
  }
  absl::Status retained = store_->Retain(options_.retained).status();
  absl::MutexLock lock(&mu_);
  last_retain_status_ = retained;
}

// ---- CheckpointScheduler
// ------------------------------------------------------

CheckpointScheduler::CheckpointScheduler(const CheckpointerOptions& options)
    : options_(options) {
  last_start_ = options_.clock->Now();
  next_due_ = last_start_ + options_.interval;
}

absl::StatusOr<CheckpointScheduler> CheckpointScheduler::Create(
    const CheckpointerOptions& options) {
  WEIR_RETURN_IF_ERROR(options.Validate());
  return CheckpointScheduler(options);
}

bool CheckpointScheduler::Due() const {
  return !in_flight_ && options_.clock->Now() >= next_due_;
}

absl::Time CheckpointScheduler::NextDue() const { return next_due_; }

void CheckpointScheduler::Started() {
  in_flight_ = true;
  last_start_ = options_.clock->Now();
}

absl::Status CheckpointScheduler::Completed(const absl::Status& status) {
  in_flight_ = false;
  const absl::Time now = options_.clock->Now();
  next_due_ =
      std::max(last_start_ + options_.interval, now + options_.min_pause);
  if (status.ok()) {
    consecutive_failures_ = 0;
    return absl::OkStatus();
  }
  ++consecutive_failures_;
  if (consecutive_failures_ <= options_.tolerated_failures) {
    return absl::OkStatus();
  }
  return absl::Status(
      status.code(),
      absl::StrCat("checkpoints failed ", consecutive_failures_,
                   " times in a row (tolerated: ", options_.tolerated_failures,
                   "); last error: ", status.message()));
}

}  // namespace weir
