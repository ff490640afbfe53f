#include "proxy/plan/planner.h"

#include <algorithm>
#include <atomic>
#include <system_error>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace eofaas::proxy {
namespace {

using eofaas::v1::DataCursor;
using eofaas::v1::Framing;
using eofaas::v1::Partitioning;

absl::Status Invalid(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

const Lister* ListerFor(UriScheme scheme, const Listers& listers) {
  switch (scheme) {
    case UriScheme::kFile:
      return listers.file;
    case UriScheme::kHttp:
    case UriScheme::kHttps:
      return listers.http;
    case UriScheme::kS3:
      return nullptr;
  }
  return nullptr;
}

bool IsHttp(UriScheme scheme) { return scheme == UriScheme::kHttp || scheme == UriScheme::kHttps; }

std::string Field(size_t input) { return absl::StrCat("inputs[", input, "]"); }

// Sizing an http(s) input waits on the network, not on this machine: up to this many at once.
constexpr size_t kConcurrentHttpInputs = 16;

// One http(s) input's listing: its object, or its error.
struct HttpListing {
  absl::Status status;
  ObjectList objects;
};

// Lists the http(s) inputs of `uris` (slot i for input i; other slots stay empty), up to
// kConcurrentHttpInputs at once, on this thread and helpers. Once one fails, or `stop` is
// requested, no other starts. `lister` may be null when no input is http(s).
std::vector<HttpListing> ListHttpInputs(const std::vector<DataUri>& uris, const Lister* lister,
                                        const std::stop_token& stop) {
  std::vector<size_t> inputs;
  for (size_t i = 0; i < uris.size(); ++i) {
    if (IsHttp(uris[i].scheme)) inputs.push_back(i);
  }
  std::vector<HttpListing> listings(uris.size());
  if (inputs.empty()) return listings;
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  auto work = [&] {
    for (size_t k = next++; k < inputs.size() && !failed && !stop.stop_requested(); k = next++) {
      HttpListing& listing = listings[inputs[k]];
      listing.status = lister->List(uris[inputs[k]], Field(inputs[k]), stop, listing.objects);
      listing.objects.ShrinkToFit();  // one object: the list keeps no empty block
      if (!listing.status.ok()) failed = true;
    }
  };
  std::vector<std::thread> helpers;
  for (size_t n = 1; n < std::min(kConcurrentHttpInputs, inputs.size()); ++n) {
    try {
      helpers.emplace_back(work);
    } catch (const std::system_error&) {
      break;  // no thread to spare: fewer helpers do the same work
    }
  }
  work();
  for (std::thread& helper : helpers) helper.join();
  return listings;
}

void AppendAll(const ObjectList& from, ObjectList& to) {
  for (size_t i = 0; i < from.size(); ++i) {
    const ObjectView object = from[i];
    to.Append(
        ListedObject{object.uri(), object.size, std::string(object.etag), object.ranges_supported});
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<Planner>> Planner::Create(const std::vector<std::string>& inputs,
                                                         const Partitioning& partitioning,
                                                         const Listers& listers,
                                                         const std::stop_token& stop) {
  if (inputs.empty()) return Invalid("inputs", "at least one input is required");
  Split split = Split::kWhole;
  int64_t split_value = 0;
  switch (partitioning.split_case()) {
    case Partitioning::kChunkBytes:
      split = Split::kChunkBytes;
      split_value = partitioning.chunk_bytes();
      if (split_value <= 0) {
        return Invalid("partitioning.chunk_bytes",
                       absl::StrCat("must be positive, got ", split_value));
      }
      break;
    case Partitioning::kChunksPerObject:
      split = Split::kChunksPerObject;
      split_value = partitioning.chunks_per_object();
      if (split_value <= 0) {
        return Invalid("partitioning.chunks_per_object",
                       absl::StrCat("must be positive, got ", split_value));
      }
      break;
    case Partitioning::SPLIT_NOT_SET:
      break;
  }
  Framing framing = partitioning.framing();
  if (framing == eofaas::v1::FRAMING_UNSPECIFIED) framing = eofaas::v1::FRAMING_NONE;
  if (!eofaas::v1::Framing_IsValid(framing)) {
    return Invalid("partitioning.framing", absl::StrCat("unknown value ", framing));
  }

  // Every URI is checked before the first is listed: a typo in the last input must not cost a
  // walk of the first.
  std::vector<DataUri> uris;
  uris.reserve(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::string field = Field(i);
    absl::StatusOr<DataUri> uri = ParseDataUri(inputs[i], field);
    if (!uri.ok()) return uri.status();
    if (ListerFor(uri->scheme, listers) == nullptr) {
      return absl::UnimplementedError(
          uri->scheme == UriScheme::kS3
              ? absl::StrCat(field,
                             ": listing s3:// inputs is not implemented yet (Invoke "
                             "accepts s3:// cursors)")
              : absl::StrCat(field, ": this proxy cannot list \"", inputs[i], "\""));
    }
    uris.push_back(*std::move(uri));
  }

  // The http(s) inputs first, side by side; an error is the first failed input's.
  std::vector<HttpListing> http = ListHttpInputs(uris, listers.http, stop);
  for (const HttpListing& listing : http) {
    if (!listing.status.ok()) return listing.status;
  }
  ObjectList objects;
  for (size_t i = 0; i < uris.size(); ++i) {
    if (stop.stop_requested()) return absl::CancelledError("planning was cancelled");
    if (IsHttp(uris[i].scheme)) {
      AppendAll(http[i].objects, objects);
      continue;
    }
    absl::Status status =
        ListerFor(uris[i].scheme, listers)->List(uris[i], Field(i), stop, objects);
    if (!status.ok()) return status;
  }
  objects.ShrinkToFit();

  std::unique_ptr<Planner> planner(new Planner(std::move(objects), split, split_value, framing));
  for (size_t i = 0; i < planner->objects_.size(); ++i) {
    ObjectView object = planner->objects_[i];
    if (__builtin_add_overflow(planner->items_, planner->PartsOf(object), &planner->items_)) {
      return Invalid("partitioning", "the plan would have more than 2^63-1 cursors");
    }
    if (__builtin_add_overflow(planner->bytes_, object.size.value_or(0), &planner->bytes_)) {
      return Invalid("inputs", "the objects' total size overflows int64");
    }
  }
  return planner;
}

int64_t Planner::PartsOf(const ObjectView& object) const {
  if (split_ == Split::kWhole || !object.size || !object.ranges_supported || *object.size == 0) {
    return 1;
  }
  const int64_t size = *object.size;
  if (split_ == Split::kChunkBytes) return size / split_value_ + (size % split_value_ != 0);
  return std::min(split_value_, size);
}

std::optional<DataCursor> Planner::Next() {
  if (part_ == parts_) {
    if (object_ == objects_.size()) return std::nullopt;
    ObjectView object = objects_[object_++];
    uri_ = object.uri();
    etag_ = std::string(object.etag);
    size_ = object.size;
    parts_ = PartsOf(object);
    part_ = 0;
  }
  DataCursor cursor;
  cursor.set_uri(uri_);
  cursor.set_framing(framing_);
  cursor.set_part(part_);
  cursor.set_parts(parts_);
  cursor.set_etag(etag_);
  if (size_) {
    const int64_t size = *size_;
    int64_t begin = 0;
    int64_t end = size;
    if (parts_ > 1 && split_ == Split::kChunkBytes) {
      begin = part_ * split_value_;
      end = begin + std::min(split_value_, size - begin);
    } else if (parts_ > 1) {
      // floor(k * size / parts) without overflowing: k * (size % parts) < parts^2 <= 2^62.
      auto boundary = [&](int64_t k) { return k * (size / parts_) + k * (size % parts_) / parts_; };
      begin = boundary(part_);
      end = boundary(part_ + 1);
    }
    cursor.set_size(size);
    cursor.set_offset(begin);
    cursor.set_length(end - begin);
  }
  ++part_;
  return cursor;
}

}  // namespace eofaas::proxy
