#include "common/utf8.h"

#include <gtest/gtest.h>

namespace eofaas::common {
namespace {

TEST(ValidUtf8Test, KeepsWellFormedText) {
  for (const char* text :
       {"", "plain ascii", "café", "Σ-band", "雲量", "\xF0\x9F\x9B\xB0 satellite"}) {
    EXPECT_EQ(ValidUtf8(text), text);
  }
}

TEST(ValidUtf8Test, ReplacesEachBadByte) {
  EXPECT_EQ(ValidUtf8("caf\xE9\n"), "caf\xEF\xBF\xBD\n");
  EXPECT_EQ(ValidUtf8("\xFF\xFE"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(ValidUtf8("\xC3"), "\xEF\xBF\xBD");                  // truncated sequence
  EXPECT_EQ(ValidUtf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong '/'
  EXPECT_EQ(ValidUtf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(ValidUtf8("\xF4\x90\x80\x80").size(), 12u);                          // above U+10FFFF
}

}  // namespace
}  // namespace eofaas::common
