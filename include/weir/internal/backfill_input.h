// -----------------------------------------------------------------------------
// File: internal/backfill_input.h
// -----------------------------------------------------------------------------
//
// The parts a service swaps in when it runs as a backfill (weir/backfill.h):
// the bounded source over the range (the sink filter of a time range is the
// service's, with weir::BackfillWritesWindow).
// Used by src/service/service.cc only.
//
// Threading: as the sources and sinks it makes (the processing thread).

#ifndef WEIR_INTERNAL_BACKFILL_INPUT_H_
#define WEIR_INTERNAL_BACKFILL_INPUT_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "weir/keyed_window_operator.h"
#include "weir/service.h"
#include "weir/sink.h"
#include "weir/source.h"

namespace weir {
namespace internal {

class BackfillInput {
 public:
  virtual ~BackfillInput() = default;

  // Opens the input of `options.backfill` (REQUIRES: set): for Kafka, asks
  // the cluster for each partition's range and reads through the source
  // `make_kafka` makes (the service's consumer); for files, one FileSource
  // per file.
  static absl::StatusOr<std::unique_ptr<BackfillInput>> Open(
      const ServiceOptions& options, const KeyedWindowOptions& features,
      const std::function<absl::StatusOr<std::unique_ptr<Source>>()>&
          make_kafka);

  // The bounded source: AtEnd() once every partition was read to its end.
  virtual Source* source() = 0;

  // What is read, for the start line, e.g. "payments/0 [0, 1200), ...".
  virtual std::string description() const = 0;
};

// A backfill's defaults: the group `<group>-backfill` and checkpoints under
// `<checkpoint_uri>/backfill-<range>`. REQUIRES: options.checkpoint_uri set.
void ResolveBackfillDefaults(ServiceOptions& options);

}  // namespace internal
}  // namespace weir

#endif  // WEIR_INTERNAL_BACKFILL_INPUT_H_
