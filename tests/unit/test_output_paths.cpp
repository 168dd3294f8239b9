// The output-path rule and regular-file inputs (issue 31): core/output_paths.hpp,
// core/input_file.hpp.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "core/error.hpp"
#include "core/input_file.hpp"
#include "core/output_paths.hpp"
#include "test_files.hpp"

namespace minipt {
namespace {

namespace fs = std::filesystem;

// A fresh directory, the working directory while the object lives.
struct InScratchDir {
  fs::path old = fs::current_path();
  fs::path dir;
  InScratchDir() {
    dir = fs::temp_directory_path() /
          ("minipt_outpaths_" + std::to_string(::getpid()) + "_" +
           std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    fs::create_directories(dir / "sub");
    fs::current_path(dir);
  }
  ~InScratchDir() {
    fs::current_path(old);
    fs::remove_all(dir);
  }
};

TEST(OutputPaths, RelativeSpellingsOfOneMissingFileCollide) {
  InScratchDir d;
  EXPECT_TRUE(same_file("o.h5", "./o.h5"));  // weakly_canonical alone told these apart
  EXPECT_TRUE(same_file("o.h5", "sub/../o.h5"));
  EXPECT_TRUE(same_file("o.h5", (d.dir / "o.h5").string()));
  EXPECT_FALSE(same_file("o.h5", "sub/o.h5"));
  EXPECT_FALSE(same_file("o.h5", "o.json"));
}

TEST(OutputPaths, LinksToAnExistingFileCollide) {
  InScratchDir d;
  {
    std::FILE* f = std::fopen("in.h5", "w");
    std::fclose(f);
  }
  fs::create_symlink("in.h5", "link.h5");
  fs::create_hard_link("in.h5", "hard.h5");
  EXPECT_TRUE(same_file("link.h5", "in.h5"));
  EXPECT_TRUE(same_file("./hard.h5", "in.h5"));
}

TEST(OutputPaths, TheRuleNamesBothKeys) {
  InScratchDir d;
  auto message = [](const std::vector<NamedPath>& out, const std::vector<NamedPath>& in) {
    try {
      check_output_paths(out, in);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_EQ(message({{"run.out", "o.h5"}, {"run.dump", "./o.h5"}}, {}),
            "run.dump: './o.h5' is the same file as run.out 'o.h5': one output would replace "
            "the other (name another file)");
  EXPECT_EQ(message({{"--out", "./c.toml"}}, {{"--config", "c.toml"}}),
            "--out: './c.toml' is the same file as the input --config 'c.toml': writing it would "
            "replace the input (name another file)");
  EXPECT_EQ(message({{"run.out", "sub"}}, {}), "run.out: cannot write 'sub': it is a directory");
  EXPECT_EQ(message({{"run.out", "o.h5"}, {"run.json", "o.json"}}, {{"--config", "c.toml"}}),
            "accepted");
  // Outputs are renamed onto their entries: two links to one file are two outputs.
  {
    std::FILE* f = std::fopen("target", "w");
    std::fclose(f);
  }
  fs::create_symlink("target", "x.h5");
  fs::create_symlink("target", "x.json");
  EXPECT_EQ(message({{"run.out", "x.h5"}, {"run.json", "x.json"}}, {}), "accepted");
  // An output onto the file an input link resolves to replaces the input.
  EXPECT_NE(message({{"--out", "target"}}, {{"calibrate", "x.h5"}}), "accepted");
}

TEST(InputFile, AFifoOrDeviceIsRefusedWithoutWaiting) {
  InScratchDir d;
  ASSERT_EQ(::mkfifo("f.toml", 0600), 0);
  const auto start = std::chrono::steady_clock::now();
  for (const char* p : {"f.toml", "/dev/null", "/dev/zero"}) {
    try {
      read_input_file(p, "--config", "configuration file");
      ADD_FAILURE() << p;
    } catch (const ConfigError& e) {
      EXPECT_EQ(std::string(e.what()), std::string("--config: ") + p +
                                           ": configuration file is not a regular file (a FIFO, "
                                           "device, socket or directory)");
    }
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  try {
    read_input_file("sub", "k", "histogram file");
    ADD_FAILURE();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("sub: cannot read histogram file (Is a directory)"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace minipt
