// ObjectList: what goes in comes out, sorting by whole URI across prefixes, and its size per
// object.
#include "proxy/plan/object_list.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <malloc.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace eofaas::proxy {
namespace {

using ::testing::ElementsAre;

// Bytes allocated with malloc, small blocks and mmapped ones.
size_t HeapInUse() {
  struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

std::vector<std::string> Uris(const ObjectList& list) {
  std::vector<std::string> uris;
  for (size_t i = 0; i < list.size(); ++i) uris.push_back(list[i].uri());
  return uris;
}

TEST(ObjectListTest, KeepsWhatWasAppended) {
  ObjectList list;
  uint32_t dir = list.AddPrefix("file:///data/d/");
  list.Append(dir, "a.txt", 10, "etag-a", true);
  list.Append(ListedObject{"http://host/x/y.csv", std::nullopt, "\"v1\"", false});
  list.Append(dir, "b.txt", 0, "", true);
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0].uri(), "file:///data/d/a.txt");
  EXPECT_EQ(list[0].size, 10);
  EXPECT_EQ(list[0].etag, "etag-a");
  EXPECT_TRUE(list[0].ranges_supported);
  EXPECT_EQ(list[1].uri(), "http://host/x/y.csv");
  EXPECT_EQ(list[1].prefix, "http://host/x/");
  EXPECT_EQ(list[1].size, std::nullopt);
  EXPECT_EQ(list[1].etag, "\"v1\"");
  EXPECT_FALSE(list[1].ranges_supported);
  EXPECT_EQ(list[2].size, 0);
}

TEST(ObjectListTest, OverlongEtagIsDropped) {
  ObjectList list;
  list.Append(ListedObject{"http://h/x", 1, std::string(ObjectList::kMaxEtagBytes + 1, 'e'), true});
  list.Append(ListedObject{"http://h/y", 1, std::string(ObjectList::kMaxEtagBytes, 'e'), true});
  EXPECT_EQ(list[0].etag, "");
  EXPECT_EQ(list[1].etag.size(), ObjectList::kMaxEtagBytes);
}

TEST(ObjectListTest, SortsTheTailByWholeUri) {
  ObjectList list;
  list.Append(ListedObject{"file:///z/first", 1, "", true});
  const size_t begin = list.size();
  uint32_t a = list.AddPrefix("file:///r/a/");
  uint32_t r = list.AddPrefix("file:///r/");
  list.Append(a, "b.txt", 1, "1", true);
  list.Append(r, "a.txt", 2, "2", true);
  list.Append(r, "a", 3, "3", true);
  list.Append(a, "a.txt", 4, "4", true);
  list.Append(r, "b", 5, "5", true);
  list.SortFrom(begin);
  EXPECT_THAT(Uris(list), ElementsAre("file:///z/first", "file:///r/a", "file:///r/a.txt",
                                      "file:///r/a/a.txt", "file:///r/a/b.txt", "file:///r/b"));
  EXPECT_EQ(list[3].etag, "4");
  EXPECT_EQ(list[3].size, 4);
}

TEST(ObjectListTest, MemoryPerObjectIsSmall) {
  constexpr int kObjects = 200'000;
  const size_t before = HeapInUse();
  {
    ObjectList list;
    uint32_t dir = list.AddPrefix("file:///srv/eo/sentinel-2/l2a/2023/tiles/");
    for (int i = 0; i < kObjects; ++i) {
      // A 24-byte name and a 20-byte etag, as a tile directory and FileLister produce.
      list.Append(dir, absl::StrCat("T32TQM_", 10'000'000 + i, "_B04.jp2"), i,
                  absl::StrCat("17a2b3c4d5e6f7a8-", absl::Hex(i, absl::kZeroPad3)), true);
    }
    list.ShrinkToFit();
    const size_t used = HeapInUse() - before;
    const double per_object = static_cast<double>(used) / kObjects;
    RecordProperty("bytes_per_object", std::to_string(per_object));
    std::printf("ObjectList: %.1f bytes per object (24-byte name, 20-byte etag)\n", per_object);
    EXPECT_LT(per_object, 24 + 24 + 20 + 8);
  }
}

}  // namespace
}  // namespace eofaas::proxy
