#include "control/store/sqlite_store.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "tests/support/temp_dir.h"

namespace eofaas::control {
namespace {

FunctionRecord Record(const std::string& name, int64_t generation) {
  FunctionRecord record;
  record.mutable_function()->set_name(name);
  record.mutable_function()->set_template_("python3");
  (*record.mutable_function()->mutable_files())["handler.py"] = "def handle(d, c): pass\n";
  record.mutable_function()->mutable_status()->set_generation(generation);
  record.mutable_deployed()->set_generation(generation);
  return record;
}

TEST(SqliteStoreTest, InsertUpdateLoadDelete) {
  tests::TempDir dir;
  auto store = SqliteStore::Open(dir / "state.db");
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->Insert(Record("b", 1)).ok());
  ASSERT_TRUE((*store)->Insert(Record("a", 1)).ok());
  EXPECT_EQ((*store)->Insert(Record("a", 2)).code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE((*store)->Update(Record("a", 3)).ok());
  EXPECT_EQ((*store)->Update(Record("zz", 1)).code(), absl::StatusCode::kNotFound);

  auto all = (*store)->LoadAll();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].function().name(), "a");
  EXPECT_EQ((*all)[0].function().status().generation(), 3);
  EXPECT_EQ((*all)[0].deployed().generation(), 3);
  EXPECT_EQ((*all)[0].function().files().at("handler.py"), "def handle(d, c): pass\n");

  ASSERT_TRUE((*store)->Delete("a").ok());
  EXPECT_EQ((*store)->Delete("a").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ((*store)->LoadAll()->size(), 1u);
}

TEST(SqliteStoreTest, SurvivesReopenWithTheSameInstanceId) {
  tests::TempDir dir;
  std::string instance;
  {
    auto store = SqliteStore::Open(dir / "state.db");
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->Insert(Record("ndvi", 4)).ok());
    ASSERT_TRUE((*store)->AppendBuildLog("ndvi", 4, {"one", "two"}).ok());
    instance = (*store)->InstanceId();
    EXPECT_EQ(instance.size(), 16u);
  }
  auto store = SqliteStore::Open(dir / "state.db");
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->InstanceId(), instance);
  EXPECT_EQ((*store)->LoadAll()->at(0).function().status().generation(), 4);
  EXPECT_EQ(*(*store)->ReadBuildLog("ndvi", 4, 0), (std::vector<std::string>{"one", "two"}));
  auto other = SqliteStore::Open(dir / "other.db");
  ASSERT_TRUE(other.ok());
  EXPECT_NE((*other)->InstanceId(), instance);
}

TEST(SqliteStoreTest, BuildLogsAppendInOrderPerGenerationAndGoWithTheFunction) {
  tests::TempDir dir;
  auto store = SqliteStore::Open(dir / "state.db");
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Insert(Record("f", 1)).ok());
  ASSERT_TRUE((*store)->AppendBuildLog("f", 1, {"a", "b"}).ok());
  ASSERT_TRUE((*store)->AppendBuildLog("f", 1, {"c"}).ok());
  ASSERT_TRUE((*store)->AppendBuildLog("f", 2, {"x"}).ok());
  EXPECT_EQ(*(*store)->ReadBuildLog("f", 1, 0), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(*(*store)->ReadBuildLog("f", 1, 2), (std::vector<std::string>{"c"}));
  EXPECT_EQ(*(*store)->ReadBuildLog("f", 2, 0), (std::vector<std::string>{"x"}));
  ASSERT_TRUE((*store)->Delete("f").ok());
  EXPECT_TRUE((*store)->ReadBuildLog("f", 1, 0)->empty());
}

TEST(SqliteStoreTest, UsesWriteAheadLogging) {
  tests::TempDir dir;
  auto store = SqliteStore::Open(dir / "state.db");
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Insert(Record("f", 1)).ok());
  EXPECT_TRUE(std::filesystem::exists(dir / "state.db-wal"));
}

TEST(SqliteStoreTest, OneProcessAtATime) {
  tests::TempDir dir;
  {
    auto first = SqliteStore::Open(dir / "state.db");
    ASSERT_TRUE(first.ok());
    auto second = SqliteStore::Open(dir / "state.db");
    EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
    EXPECT_TRUE(absl::StrContains(second.status().message(), "in use")) << second.status();
  }
  EXPECT_TRUE(SqliteStore::Open(dir / "state.db").ok());
}

TEST(SqliteStoreTest, UnopenablePathIsUnavailable) {
  auto store = SqliteStore::Open("/nonexistent-dir/state.db");
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace eofaas::control
