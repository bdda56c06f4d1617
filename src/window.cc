#include "weir/window.h"

#include "absl/strings/str_cat.h"

namespace weir {
namespace {

bool WholePositiveMillis(absl::Duration d) {
  return d > absl::ZeroDuration() && absl::Floor(d, absl::Milliseconds(1)) == d;
}

std::string Dur(absl::Duration d) { return absl::FormatDuration(d); }

}  // namespace

absl::Status WindowSpec::Validate() const {
  const absl::Duration year = absl::Hours(24 * 366);
  switch (kind) {
    case WindowKind::kTumbling:
    case WindowKind::kHopping:
    case WindowKind::kSliding:
      if (!WholePositiveMillis(size) || size > 100 * year) {
        return absl::InvalidArgumentError(absl::StrCat(
            "window.size: must be a positive whole number of milliseconds "
            "up to 100 years, got ",
            Dur(size)));
      }
      if (kind == WindowKind::kHopping || kind == WindowKind::kSliding) {
        if (!WholePositiveMillis(slide) || slide > size ||
            ToMillis(size) % ToMillis(slide) != 0) {
          return absl::InvalidArgumentError(absl::StrCat(
              "window.slide: must be a positive whole number of milliseconds "
              "that divides size (",
              Dur(size), "), got ", Dur(slide)));
        }
      }
      if (absl::Floor(offset, absl::Milliseconds(1)) != offset ||
          absl::AbsDuration(offset) >= size) {
        return absl::InvalidArgumentError(absl::StrCat(
            "window.offset: must be whole milliseconds with |offset| < size, "
            "got ",
            Dur(offset)));
      }
      return absl::OkStatus();
    case WindowKind::kSession:
      if (!WholePositiveMillis(gap) || gap > 100 * year) {
        return absl::InvalidArgumentError(absl::StrCat(
            "window.gap: must be a positive whole number of milliseconds, "
            "got ",
            Dur(gap)));
      }
      return absl::OkStatus();
  }
  return absl::InvalidArgumentError("window.kind: unknown window kind");
}

std::string WindowSpec::ToString() const {
  std::string s;
  switch (kind) {
    case WindowKind::kTumbling:
      s = absl::StrCat("tumbling(", Dur(size), ")");
      break;
    case WindowKind::kHopping:
      s = absl::StrCat("hopping(", Dur(size), ",", Dur(slide), ")");
      break;
    case WindowKind::kSession:
      return absl::StrCat("session(", Dur(gap), ")");
    case WindowKind::kSliding:
      s = absl::StrCat("sliding(", Dur(size), ",", Dur(slide), ")");
      break;
  }
  if (offset != absl::ZeroDuration()) absl::StrAppend(&s, "+", Dur(offset));
  return s;
}

WindowSpec Tumbling(absl::Duration size, absl::Duration offset) {
  WindowSpec spec;
  spec.kind = WindowKind::kTumbling;
  spec.size = size;
  spec.slide = size;
  spec.offset = offset;
  return spec;
}

WindowSpec Hopping(absl::Duration size, absl::Duration slide,
                   absl::Duration offset) {
  WindowSpec spec;
  spec.kind = WindowKind::kHopping;
  spec.size = size;
  spec.slide = slide;
  spec.offset = offset;
  return spec;
}

WindowSpec Session(absl::Duration gap) {
  WindowSpec spec;
  spec.kind = WindowKind::kSession;
  spec.gap = gap;
  return spec;
}

WindowSpec Sliding(absl::Duration size, absl::Duration tile) {
  WindowSpec spec;
  spec.kind = WindowKind::kSliding;
  spec.size = size;
  spec.slide = tile;
  return spec;
}

WindowSpec Daily(absl::Duration offset) {
  return Tumbling(absl::Hours(24), offset);
}

}  // namespace weir
