// Whole-file writes are atomic: the final name holds the old text or the new
// text, never part of one, and a failed write leaves nothing behind.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

#include "plait/schedule/error.hpp"
#include "plait/schedule/files.hpp"

namespace plait {
namespace {

namespace fs = std::filesystem;

// A fresh, empty directory per test.
class FilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = fs::path(::testing::TempDir()) /
                 ("plait_files_test_" + std::to_string(::getpid()) + "_" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(directory_);
    fs::create_directories(directory_);
  }
  void TearDown() override { fs::remove_all(directory_); }

  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(directory_)) names.push_back(entry.path().filename().string());
    return names;
  }

  fs::path directory_;
};

TEST_F(FilesTest, WritesTheTextUnderItsNameAndNothingElse) {
  const std::string path = (directory_ / "out.json").string();
  write_text_file(path, "first");
  write_text_file(path, "second, longer");
  EXPECT_EQ(read_text_file(path), "second, longer");
  EXPECT_EQ(entries(), std::vector<std::string>{"out.json"});
}

TEST_F(FilesTest, AFailedReplaceKeepsWhatWasThereAndLeavesNoTemporary) {
  const fs::path taken = directory_ / "taken";
  fs::create_directories(taken / "inside");  // a non-empty directory cannot be renamed over
  try {
    write_text_file(taken.string(), "text");
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_EQ(error.where(), taken.string());
    EXPECT_NE(error.why().find("cannot replace"), std::string::npos) << error.why();
  }
  EXPECT_TRUE(fs::is_directory(taken / "inside"));
  EXPECT_EQ(entries(), std::vector<std::string>{"taken"});
}

TEST_F(FilesTest, AMissingDirectoryIsNamed) {
  const std::string path = (directory_ / "missing" / "out.json").string();
  try {
    write_text_file(path, "text");
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_EQ(error.where(), path);
    EXPECT_NE(error.why().find("cannot open for writing"), std::string::npos) << error.why();
  }
  EXPECT_THROW(check_writable(path), Error);
}

TEST_F(FilesTest, CheckWritableCreatesNothing) {
  check_writable((directory_ / "later.json").string());
  EXPECT_TRUE(entries().empty());
}

// A writer killed at some moment of a large write: whenever the signal lands,
// the final name holds the complete old or the complete new text.
TEST_F(FilesTest, AWriterKilledMidWriteLeavesTheOldOrTheNewFile) {
  const std::string path = (directory_ / "trace.json").string();
  const std::string old_text = "old";
  const std::string new_text(32 << 20, 'x');
  write_text_file(path, old_text);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    write_text_file(path, new_text);
    ::_exit(0);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  const std::string now = read_text_file(path);
  EXPECT_TRUE(now == old_text || now == new_text) << "a file of " << now.size() << " bytes";
  std::printf("the writer was killed %s\n", now == old_text ? "before its rename: the old file stays" : "after its rename");
}

}  // namespace
}  // namespace plait
