# frozen_string_literal: true

require_relative "test_helper"
require "minitest/mock"

# What a killed run left beside an output is tidied by its name alone, a folder the run may not write in is
# refused with the fix, and train's --out-dir check sees through links (the twin:
# reference_py/tests/test_output_claim.py).
class OutputClaimTest < Minitest::Test
  include Hymenoptera::TestSupport
  OutputClaim = Hymenoptera::OutputClaim

  # Killed while writing (.NAME.<12 hex>.tmp: half a result, no marker yet) and between the two renames of a
  # swap (.NAME.<12 hex>.old, the earlier result; NAME missing): the next run removes the one and restores the
  # other, whatever they hold. Names that only resemble them (a user's backup, an empty folder) stay as they were.
  def test_a_killed_runs_leftovers_are_tidied_by_name_and_nothing_else
    target = File.join(tmpdir, "scratch")
    half = File.join(tmpdir, ".scratch.0123456789ab.tmp")
    Dir.mkdir(half)
    File.write(File.join(half, "curves.json"), '{"train_loss": [0.')
    earlier = File.join(tmpdir, ".scratch.ba9876543210.old")
    Dir.mkdir(earlier)
    File.write(File.join(earlier, "curves.json"), "[]")
    File.write(File.join(earlier, OutputClaim::MARKER), JSON.generate({tool: "train", files: ["curves.json"]}))
    others = %w[.scratch.old .scratch.backup.tmp .scratch.1234abcd.tmp .scratch.0123456789AB.tmp .scratch.0123456789ab.tmp.keep]
    others.each { |name| Dir.mkdir(File.join(tmpdir, name)) }
    File.write(File.join(tmpdir, ".scratch.old", "notes.txt"), "the user's backup")

    _, err = capture_io { OutputClaim::OutputDir.new(target, "train", "--out-dir", signature: "curves.json").hold { nil } }

    assert_equal "[]", File.read(File.join(target, "curves.json"))
    assert_equal (others + ["scratch"]).sort, Dir.children(tmpdir).sort
    assert_equal "the user's backup", File.read(File.join(tmpdir, ".scratch.old", "notes.txt"))
    assert(others.drop(1).all? { |name| Dir.empty?(File.join(tmpdir, name)) })
    assert_equal ["train: removed #{half}, left by an interrupted run",
                  "train: restored #{target} from #{earlier}, left by a run interrupted while replacing it"], err.lines(chomp: true)
  end

  def test_an_old_beside_a_present_target_and_a_files_temporary_are_removed_by_name
    target = File.join(tmpdir, "scratch")
    Dir.mkdir(target)
    File.write(File.join(target, OutputClaim::MARKER), JSON.generate({tool: "train", files: []}))
    earlier = File.join(tmpdir, ".scratch.00000000000f.old")
    Dir.mkdir(earlier)
    File.write(File.join(earlier, "curves.json"), "[]")
    half_file = File.join(tmpdir, ".net.pth.00000000000e.tmp")
    File.write(half_file, "PK")
    mine = File.join(tmpdir, ".net.pth.mine.tmp")
    File.write(mine, "the user's")

    _, err = capture_io do
      OutputClaim::OutputDir.new(target, "train", "--out-dir").hold { nil }
      OutputClaim::OutputFile.new(File.join(tmpdir, "net.pth"), "pretrained", "--out") { true }.hold { nil }
    end

    assert_equal [".net.pth.mine.tmp", "scratch"], Dir.children(tmpdir).sort
    assert_equal "the user's", File.read(mine)
    assert_equal ["train: removed #{earlier}, left by an interrupted run",
                  "pretrained: removed #{half_file}, left by an interrupted run"], err.lines(chomp: true)
  end

  def test_a_folder_it_may_not_write_in_is_refused_with_the_fix
    refused = ->(*) { raise Errno::EACCES, File.join(tmpdir, ".scratch.lock") }
    error = File.stub(:open, refused) do
      assert_raises(Hymenoptera::UserError) { OutputClaim::OutputDir.new(File.join(tmpdir, "scratch"), "train", "--out-dir").claim }
    end
    assert_equal "#{tmpdir} is not writable (Permission denied); make it writable or choose another --out-dir", error.message
  end

  # Two runs started at once into a new folder: the one whose mkdir comes second goes on in the folder the
  # other made, and does not take it away when it ends.
  def test_a_parent_folder_another_run_makes_meanwhile_is_shared_and_left_to_it
    parent = File.join(tmpdir, "runs")
    mkdir = Dir.method(:mkdir)
    raced = lambda do |path, *args|
      mkdir.call(path) if path == parent # the other run's, between this one's check and its mkdir
      mkdir.call(path, *args)
    end
    claim = OutputClaim::OutputDir.new(File.join(parent, "ruby"), "train", "--out-dir")
    Dir.stub(:mkdir, raced) { claim.claim }
    claim.release
    assert File.directory?(parent)
  end

  # The other run's mkdir comes just after this one first looked for the folder and found none.
  def test_a_parent_folder_another_run_makes_right_after_this_one_looked_is_shared
    parent = File.join(tmpdir, "runs")
    looks = {stat: File.method(:stat), directory?: File.method(:directory?)}
    raced = looks.to_h do |name, look|
      [name, lambda do |path|
        unless path != parent || File.exist?(parent)
          Dir.mkdir(parent) # the other run's, right after this one's look
          name == :stat ? raise(Errno::ENOENT, path) : (return false)
        end
        look.call(path)
      end]
    end
    claim = OutputClaim::OutputDir.new(File.join(parent, "ruby"), "train", "--out-dir")
    File.stub(:stat, raced[:stat]) { File.stub(:directory?, raced[:directory?]) { claim.claim } }
    claim.release
    assert File.directory?(parent)
  end

  # What train's --out-dir check asks (the twin: reference_py/tests/test_output_claim.py's).
  def test_inside_resolves_links_and_paths_that_do_not_exist_yet
    FileUtils.mkdir_p(File.join(tmpdir, "data", "train"))
    File.symlink(File.join(tmpdir, "data", "train"), File.join(tmpdir, "link"))
    Dir.chdir(tmpdir) do
      assert OutputClaim.inside?("data", "data") && OutputClaim.inside?("data/train/ants/new", File.join(tmpdir, "data"))
      assert OutputClaim.inside?("link/ants", "data") && OutputClaim.inside?("data/../data/x", "data")
      refute OutputClaim.inside?("data2", "data") || OutputClaim.inside?(".", "data") || OutputClaim.inside?("data", "data/train")
      assert_equal File.join(File.realpath(tmpdir), "data", "train", "x"), OutputClaim.real_path("link/new/../x")
    end
  end
end
