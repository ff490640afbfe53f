// Planner: request validation with the field named, partition arithmetic over many sizes, and a
// million cursors handed out lazily with bounded memory.
#include "proxy/plan/planner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <malloc.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <limits>
#include <map>
#include <stop_token>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "proxy/plan/data_uri.h"
#include "proxy/plan/file_lister.h"
#include "tests/support/temp_dir.h"

namespace eofaas::proxy {
namespace {

namespace fs = std::filesystem;
using eofaas::v1::DataCursor;
using eofaas::v1::Partitioning;
using ::testing::HasSubstr;

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

// Bytes allocated with malloc, small blocks and mmapped ones.
size_t HeapInUse() {
  struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

// Lists the objects a test registered under an input's text.
class FakeLister final : public Lister {
 public:
  void Add(const std::string& input, ListedObject object) {
    objects_[input].push_back(std::move(object));
  }

  absl::Status List(const DataUri& input, absl::string_view field, const std::stop_token&,
                    ObjectList& out) const override {
    ++calls_;
    auto it = objects_.find(input.text);
    if (it == objects_.end()) return absl::NotFoundError(absl::StrCat(field, ": no such object"));
    for (const ListedObject& object : it->second) out.Append(object);
    return absl::OkStatus();
  }

  int calls() const { return calls_; }

 private:
  std::map<std::string, std::vector<ListedObject>> objects_;
  mutable std::atomic<int> calls_ = 0;
};

// Each List takes `delay` (three times as long for a URI with "late" in it) and lists one object
// of 10 bytes under the input's URI, or fails for a URI with "missing" in it; counts how many run
// at once.
class SlowLister final : public Lister {
 public:
  explicit SlowLister(absl::Duration delay) : delay_(delay) {}

  absl::Status List(const DataUri& input, absl::string_view field, const std::stop_token&,
                    ObjectList& out) const override {
    ++calls_;
    const int now = ++running_;
    for (int seen = most_; now > seen && !most_.compare_exchange_weak(seen, now);) {
    }
    absl::SleepFor(absl::StrContains(input.text, "late") ? 3 * delay_ : delay_);
    --running_;
    if (absl::StrContains(input.text, "missing")) {
      return absl::NotFoundError(absl::StrCat(field, ": no such object"));
    }
    out.Append(ListedObject{input.text, 10, "", true});
    return absl::OkStatus();
  }

  int most_at_once() const { return most_; }
  int calls() const { return calls_; }

 private:
  absl::Duration delay_;
  mutable std::atomic<int> calls_ = 0;
  mutable std::atomic<int> running_ = 0;
  mutable std::atomic<int> most_ = 0;
};

Partitioning ChunkBytes(int64_t bytes) {
  Partitioning partitioning;
  partitioning.set_chunk_bytes(bytes);
  return partitioning;
}

Partitioning ChunksPerObject(int32_t chunks) {
  Partitioning partitioning;
  partitioning.set_chunks_per_object(chunks);
  return partitioning;
}

std::vector<DataCursor> Drain(Planner& planner) {
  std::vector<DataCursor> cursors;
  while (std::optional<DataCursor> cursor = planner.Next()) cursors.push_back(*cursor);
  return cursors;
}

class PlannerTest : public ::testing::Test {
 protected:
  absl::StatusOr<std::unique_ptr<Planner>> Plan(const std::vector<std::string>& inputs,
                                                const Partitioning& partitioning) {
    return Planner::Create(inputs, partitioning, Listers{&fake_, &fake_});
  }

  // Plans one object of `size` (unknown when nullopt) and returns its cursors.
  std::vector<DataCursor> Cut(std::optional<int64_t> size, const Partitioning& partitioning,
                              bool ranges = true) {
    FakeLister lister;
    lister.Add("http://h/o", ListedObject{"http://h/o", size, "e1", ranges});
    absl::StatusOr<std::unique_ptr<Planner>> planner =
        Planner::Create({"http://h/o"}, partitioning, Listers{nullptr, &lister});
    EXPECT_TRUE(planner.ok()) << planner.status();
    if (!planner.ok()) return {};
    std::vector<DataCursor> cursors = Drain(**planner);
    EXPECT_EQ((*planner)->items(), static_cast<int64_t>(cursors.size()));
    EXPECT_EQ((*planner)->bytes(), size.value_or(0));
    return cursors;
  }

  void ExpectInvalid(const std::vector<std::string>& inputs, const Partitioning& partitioning,
                     const std::string& message) {
    absl::StatusOr<std::unique_ptr<Planner>> planner = Plan(inputs, partitioning);
    ASSERT_FALSE(planner.ok()) << message;
    EXPECT_EQ(planner.status().code(), absl::StatusCode::kInvalidArgument) << planner.status();
    EXPECT_THAT(std::string(planner.status().message()), HasSubstr(message));
  }

  FakeLister fake_;
};

// Checks that `cursors` cut an object of `size` into contiguous chunks covering it exactly once.
void ExpectCover(const std::vector<DataCursor>& cursors, int64_t size) {
  ASSERT_FALSE(cursors.empty());
  int64_t next = 0;
  for (size_t k = 0; k < cursors.size(); ++k) {
    const DataCursor& cursor = cursors[k];
    EXPECT_EQ(cursor.part(), static_cast<int64_t>(k));
    EXPECT_EQ(cursor.parts(), static_cast<int64_t>(cursors.size()));
    EXPECT_EQ(cursor.size(), size);
    EXPECT_EQ(cursor.offset(), next) << "part " << k << " of size " << size;
    ASSERT_TRUE(cursor.has_length());
    EXPECT_TRUE(cursor.length() > 0 || size == 0);
    next = cursor.offset() + cursor.length();
  }
  EXPECT_EQ(next, size);
}

TEST_F(PlannerTest, RejectsBadRequestsNamingTheField) {
  fake_.Add("file:///d/x", ListedObject{"file:///d/x", 1, "", true});
  ExpectInvalid({}, Partitioning(), "inputs: at least one input is required");
  ExpectInvalid({"file:///d/x"}, ChunkBytes(0),
                "partitioning.chunk_bytes: must be positive, got 0");
  ExpectInvalid({"file:///d/x"}, ChunkBytes(-4), "partitioning.chunk_bytes: must be positive");
  ExpectInvalid({"file:///d/x"}, ChunksPerObject(-1),
                "partitioning.chunks_per_object: must be positive, got -1");
  ExpectInvalid({"file:///d/x"}, ChunksPerObject(0), "partitioning.chunks_per_object");
  Partitioning framing;
  framing.set_framing(static_cast<eofaas::v1::Framing>(9));
  ExpectInvalid({"file:///d/x"}, framing, "partitioning.framing: unknown value 9");
  ExpectInvalid({"file:///d/x", "file:///d/x", "ftp://host/x"}, Partitioning(),
                "inputs[2]: unsupported scheme \"ftp\"");
  ExpectInvalid({"file:///d/x", "file://host/x"}, Partitioning(), "inputs[1]: ");
  ExpectInvalid({"file:///d/x", "x"}, Partitioning(), "inputs[1]: \"x\" is not a URI");
  // Every URI is checked before anything is listed.
  EXPECT_EQ(fake_.calls(), 0);
}

TEST_F(PlannerTest, S3AndUnlistedSchemesAreUnimplemented) {
  absl::StatusOr<std::unique_ptr<Planner>> s3 = Plan({"s3://eo-bucket/tiles/"}, Partitioning());
  EXPECT_EQ(s3.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(s3.status().message()), HasSubstr("inputs[0]: listing s3://"));
  absl::StatusOr<std::unique_ptr<Planner>> http =
      Planner::Create({"http://h/x"}, Partitioning(), Listers{&fake_, nullptr});
  EXPECT_EQ(http.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(http.status().message()), HasSubstr("inputs[0]: "));
}

TEST_F(PlannerTest, ListerErrorsComeThrough) {
  absl::StatusOr<std::unique_ptr<Planner>> planner = Plan({"http://h/missing"}, Partitioning());
  EXPECT_EQ(planner.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(planner.status().message()), HasSubstr("inputs[0]: "));
}

// http(s) inputs are sized side by side (a HEAD waits on the network); the cursors still follow
// the inputs' order, file inputs included.
TEST_F(PlannerTest, HttpInputsAreListedAtOnceInInputOrder) {
  SlowLister slow(absl::Milliseconds(100));
  fake_.Add("file:///d", ListedObject{"file:///d/a", 10, "ea", true});
  std::vector<std::string> inputs;
  for (int i = 0; i < 8; ++i) inputs.push_back(absl::StrCat("http://h/", i));
  inputs.insert(inputs.begin() + 4, "file:///d");
  absl::StatusOr<std::unique_ptr<Planner>> planner =
      Planner::Create(inputs, Partitioning(), Listers{&fake_, &slow});
  ASSERT_TRUE(planner.ok()) << planner.status();
  EXPECT_GT(slow.most_at_once(), 1);
  EXPECT_LE(slow.most_at_once(), 8);
  std::vector<std::string> uris;
  for (const DataCursor& cursor : Drain(**planner)) uris.push_back(cursor.uri());
  inputs[4] = "file:///d/a";
  EXPECT_EQ(uris, inputs);
}

// The error is the first failing input's, whichever failed first; the file inputs are not walked.
TEST_F(PlannerTest, FirstFailingHttpInputIsReported) {
  SlowLister slow(absl::Milliseconds(20));
  std::vector<std::string> inputs = {"file:///d"};
  for (int i = 0; i < 40; ++i) inputs.push_back(absl::StrCat("http://h/", i));
  inputs[3] = "http://h/late-missing";  // fails after inputs[9] did
  inputs[9] = "http://h/missing";
  inputs[30] = "http://h/missing-too";  // not started once a failure is known
  absl::StatusOr<std::unique_ptr<Planner>> planner =
      Planner::Create(inputs, Partitioning(), Listers{&fake_, &slow});
  EXPECT_EQ(planner.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(planner.status().message(), "inputs[3]: no such object");
  EXPECT_EQ(fake_.calls(), 0);
}

// Once a stop is requested no further input is listed (those being listed finish), and the
// answer is CANCELLED.
TEST_F(PlannerTest, StopEndsPlanningBeforeTheNextInput) {
  SlowLister slow(absl::Milliseconds(200));
  fake_.Add("file:///d", ListedObject{"file:///d/a", 10, "ea", true});
  std::vector<std::string> inputs = {"file:///d"};
  for (int i = 0; i < 64; ++i) inputs.push_back(absl::StrCat("http://h/", i));
  std::stop_source stop;
  auto planned = std::async(std::launch::async, [&] {
    return Planner::Create(inputs, Partitioning(), Listers{&fake_, &slow}, stop.get_token());
  });
  absl::SleepFor(absl::Milliseconds(50));  // while the first http inputs are sized
  stop.request_stop();
  absl::StatusOr<std::unique_ptr<Planner>> planner = planned.get();
  EXPECT_EQ(planner.status().code(), absl::StatusCode::kCancelled) << planner.status();
  EXPECT_LE(slow.calls(), 16);  // those already started, of 64
  EXPECT_EQ(fake_.calls(), 0);  // the file input is not walked

  // Stopped before it begins: nothing is listed.
  std::stop_source stopped;
  stopped.request_stop();
  planner =
      Planner::Create({"file:///d"}, Partitioning(), Listers{&fake_, &slow}, stopped.get_token());
  EXPECT_EQ(planner.status().code(), absl::StatusCode::kCancelled) << planner.status();
  EXPECT_EQ(fake_.calls(), 0);
}

TEST_F(PlannerTest, OverflowingPlansAreInvalid) {
  fake_.Add("http://h/huge", ListedObject{"http://h/huge", kMax, "", true});
  ExpectInvalid({"http://h/huge", "http://h/huge"}, ChunkBytes(1), "partitioning: ");
  ExpectInvalid({"http://h/huge", "http://h/huge"}, Partitioning(), "inputs: ");
}

TEST_F(PlannerTest, WholeObjects) {
  fake_.Add("file:///d", ListedObject{"file:///d/a", 10, "ea", true});
  fake_.Add("file:///d", ListedObject{"file:///d/empty", 0, "e0", true});
  fake_.Add("http://h/stream", ListedObject{"http://h/stream", std::nullopt, "", false});
  absl::StatusOr<std::unique_ptr<Planner>> planner =
      Plan({"file:///d", "http://h/stream"}, Partitioning());
  ASSERT_TRUE(planner.ok()) << planner.status();
  EXPECT_EQ((*planner)->items(), 3);
  EXPECT_EQ((*planner)->bytes(), 10);
  std::vector<DataCursor> cursors = Drain(**planner);
  ASSERT_EQ(cursors.size(), 3u);
  EXPECT_EQ(cursors[0].uri(), "file:///d/a");
  EXPECT_EQ(cursors[0].offset(), 0);
  EXPECT_EQ(cursors[0].length(), 10);
  EXPECT_EQ(cursors[0].size(), 10);
  EXPECT_EQ(cursors[0].etag(), "ea");
  EXPECT_EQ(cursors[0].part(), 0);
  EXPECT_EQ(cursors[0].parts(), 1);
  EXPECT_EQ(cursors[0].framing(), eofaas::v1::FRAMING_NONE);
  // An empty object is one cursor of length 0.
  EXPECT_TRUE(cursors[1].has_length());
  EXPECT_EQ(cursors[1].length(), 0);
  // Unknown size: the whole object, no length.
  EXPECT_EQ(cursors[2].uri(), "http://h/stream");
  EXPECT_FALSE(cursors[2].has_length());
  EXPECT_EQ(cursors[2].size(), 0);
  EXPECT_EQ(cursors[2].parts(), 1);
  EXPECT_EQ((*planner)->Next(), std::nullopt);
  EXPECT_EQ((*planner)->Next(), std::nullopt);
}

TEST_F(PlannerTest, ChunkBytesCoverEachObjectExactlyOnce) {
  for (int64_t size = 0; size <= 64; ++size) {
    for (int64_t chunk = 1; chunk <= 17; ++chunk) {
      SCOPED_TRACE(absl::StrCat("size ", size, " chunk_bytes ", chunk));
      std::vector<DataCursor> cursors = Cut(size, ChunkBytes(chunk));
      ExpectCover(cursors, size);
      const int64_t parts = size == 0 ? 1 : (size + chunk - 1) / chunk;
      ASSERT_EQ(static_cast<int64_t>(cursors.size()), parts);
      for (int64_t k = 0; k + 1 < parts; ++k) EXPECT_EQ(cursors[k].length(), chunk);
      EXPECT_LE(cursors.back().length(), chunk);
    }
  }
}

TEST_F(PlannerTest, LastChunkIsShorter) {
  std::vector<DataCursor> cursors = Cut(10, ChunkBytes(4));
  ASSERT_EQ(cursors.size(), 3u);
  EXPECT_EQ(cursors[0].length(), 4);
  EXPECT_EQ(cursors[1].offset(), 4);
  EXPECT_EQ(cursors[2].offset(), 8);
  EXPECT_EQ(cursors[2].length(), 2);
}

TEST_F(PlannerTest, OneByteChunks) {
  std::vector<DataCursor> cursors = Cut(5, ChunkBytes(1));
  ASSERT_EQ(cursors.size(), 5u);
  for (int k = 0; k < 5; ++k) {
    EXPECT_EQ(cursors[k].offset(), k);
    EXPECT_EQ(cursors[k].length(), 1);
  }
}

TEST_F(PlannerTest, ChunksPerObjectSpreadBytesEvenly) {
  for (int64_t size = 0; size <= 64; ++size) {
    for (int32_t chunks = 1; chunks <= 17; ++chunks) {
      SCOPED_TRACE(absl::StrCat("size ", size, " chunks_per_object ", chunks));
      std::vector<DataCursor> cursors = Cut(size, ChunksPerObject(chunks));
      ExpectCover(cursors, size);
      ASSERT_EQ(static_cast<int64_t>(cursors.size()),
                std::min<int64_t>(chunks, std::max<int64_t>(size, 1)));
      int64_t shortest = kMax, longest = 0;
      for (const DataCursor& cursor : cursors) {
        shortest = std::min(shortest, cursor.length());
        longest = std::max(longest, cursor.length());
      }
      EXPECT_LE(longest - shortest, 1);
    }
  }
}

TEST_F(PlannerTest, ChunksPerObjectNotDividingTheSize) {
  std::vector<DataCursor> cursors = Cut(10, ChunksPerObject(3));
  ASSERT_EQ(cursors.size(), 3u);
  EXPECT_EQ(cursors[0].length(), 3);
  EXPECT_EQ(cursors[1].length(), 3);
  EXPECT_EQ(cursors[2].length(), 4);
  // Fewer bytes than chunks: one byte each, no empty chunk.
  std::vector<DataCursor> small = Cut(3, ChunksPerObject(5));
  ASSERT_EQ(small.size(), 3u);
  for (const DataCursor& cursor : small) EXPECT_EQ(cursor.length(), 1);
}

TEST_F(PlannerTest, HugeObjectsDoNotOverflow) {
  ExpectCover(Cut(kMax, ChunkBytes(kMax / 3 + 1)), kMax);
  ExpectCover(Cut(kMax, ChunksPerObject(3)), kMax);
  ExpectCover(Cut(kMax, ChunkBytes(kMax)), kMax);
  std::vector<DataCursor> first = Cut(kMax - 1, ChunkBytes(kMax / 2));
  ExpectCover(first, kMax - 1);
  EXPECT_EQ(first.size(), 2u);
}

TEST_F(PlannerTest, ObjectsWithoutRangesOrSizeAreNotSplit) {
  std::vector<DataCursor> no_ranges = Cut(100, ChunkBytes(10), /*ranges=*/false);
  ASSERT_EQ(no_ranges.size(), 1u);
  EXPECT_EQ(no_ranges[0].length(), 100);
  EXPECT_EQ(no_ranges[0].parts(), 1);
  std::vector<DataCursor> no_size = Cut(std::nullopt, ChunksPerObject(4));
  ASSERT_EQ(no_size.size(), 1u);
  EXPECT_FALSE(no_size[0].has_length());
  EXPECT_EQ(no_size[0].offset(), 0);
}

TEST_F(PlannerTest, FramingIsCopiedIntoEveryCursor) {
  Partitioning lines = ChunkBytes(3);
  lines.set_framing(eofaas::v1::FRAMING_LINES);
  for (const DataCursor& cursor : Cut(10, lines)) {
    EXPECT_EQ(cursor.framing(), eofaas::v1::FRAMING_LINES);
    EXPECT_EQ(cursor.etag(), "e1");
    EXPECT_EQ(cursor.uri(), "http://h/o");
  }
}

TEST_F(PlannerTest, InputsInOrderObjectsInListedOrder) {
  fake_.Add("file:///b", ListedObject{"file:///b/1", 3, "", true});
  fake_.Add("file:///b", ListedObject{"file:///b/2", 3, "", true});
  fake_.Add("file:///a", ListedObject{"file:///a/1", 5, "", true});
  absl::StatusOr<std::unique_ptr<Planner>> planner =
      Plan({"file:///b", "file:///a"}, ChunkBytes(2));
  ASSERT_TRUE(planner.ok()) << planner.status();
  std::vector<std::string> order;
  for (const DataCursor& cursor : Drain(**planner)) {
    order.push_back(absl::StrCat(cursor.uri(), "@", cursor.offset()));
  }
  EXPECT_THAT(order, ::testing::ElementsAre("file:///b/1@0", "file:///b/1@2", "file:///b/2@0",
                                            "file:///b/2@2", "file:///a/1@0", "file:///a/1@2",
                                            "file:///a/1@4"));
  EXPECT_EQ((*planner)->bytes(), 11);
}

// A million cursors over three real files: counted, contiguous, and produced without the heap
// growing (each cursor is built on demand; only the three objects are held).
TEST(PlannerLazinessTest, MillionCursorsInBoundedMemory) {
  tests::TempDir temp;
  const std::string root = fs::canonical(temp.path()).string();
  const std::vector<std::pair<std::string, int64_t>> files = {
      {"a.dat", 400'000}, {"b.dat", 350'000}, {"c.dat", 250'000}};
  for (const auto& [name, size] : files) {
    temp.Write(name, "");
    ASSERT_EQ(truncate((root + "/" + name).c_str(), size), 0);
  }
  absl::StatusOr<DataRoots> roots = DataRoots::Create({root});
  ASSERT_TRUE(roots.ok()) << roots.status();
  FileLister lister(*std::move(roots));
  Partitioning partitioning = ChunkBytes(1);
  partitioning.set_framing(eofaas::v1::FRAMING_LINES);
  absl::StatusOr<std::unique_ptr<Planner>> planner =
      Planner::Create({FileUri(root) + "/*.dat"}, partitioning, Listers{&lister, nullptr});
  ASSERT_TRUE(planner.ok()) << planner.status();
  EXPECT_EQ((*planner)->items(), 1'000'000);
  EXPECT_EQ((*planner)->bytes(), 1'000'000);

  const size_t baseline = HeapInUse();
  size_t peak = baseline;
  int64_t count = 0;
  int64_t expected_offset = 0;
  size_t file = 0;
  while (std::optional<DataCursor> cursor = (*planner)->Next()) {
    if (cursor->offset() == 0 && count > 0) {
      ASSERT_EQ(expected_offset, files[file].second);
      ++file;
      expected_offset = 0;
    }
    ASSERT_EQ(cursor->offset(), expected_offset);
    ASSERT_EQ(cursor->length(), 1);
    expected_offset += 1;
    if (++count % 50'000 == 0) peak = std::max(peak, HeapInUse());
  }
  EXPECT_EQ(count, 1'000'000);
  EXPECT_EQ(file, 2u);
  EXPECT_LT(peak - baseline, 64u * 1024) << "the heap grew while cursors were handed out";
}

}  // namespace
}  // namespace eofaas::proxy
