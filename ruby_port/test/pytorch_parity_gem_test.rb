# frozen_string_literal: true

require_relative "test_helper"

# pytorch_parity as a user loads it: with -rpytorch_parity before a port that requires the gems itself
# (from the repository root, the venv active, as the README says), and from another project's Gemfile
# through its gemspec (gem "pytorch_parity", path: ...), required by the port.
class PytorchParityGemTest < Minitest::Test
  include Hymenoptera::TestSupport

  PORT = <<~RUBY
    require "torch"
    require "torchvision"
    Torch.manual_seed(0)
    order = Torch::Utils::Data::DataLoader.new((0...6).to_a, batch_size: 6, shuffle: true).first.to_a
    flip = TorchVision::Transforms::RandomHorizontalFlip.new(p: 1.0).call(Torch.tensor([[[0], [1]]], dtype: :uint8))
    print [order, flip.to_a].inspect
  RUBY

  # What the port prints here, where the library is loaded.
  def expected
    Torch.manual_seed(0)
    order = Torch::Utils::Data::DataLoader.new((0...6).to_a, batch_size: 6, shuffle: true).first.to_a
    [order, [[[1], [0]]]].inspect
  end

  # `COMMAND` run by sh in a fresh environment (not this test's bundle), with env; port.rb is PORT after
  # first_lines.
  def run_port(command, chdir:, env: {}, first_lines: "")
    File.write(File.join(tmpdir, "port.rb"), first_lines + PORT)
    Bundler.with_unbundled_env do
      Open3.capture3({"OMP_NUM_THREADS" => "1", "PORT" => File.join(tmpdir, "port.rb")}.merge(env), "sh", "-c", command,
                     chdir: chdir)
    end
  end

  def test_dash_r_from_the_repository_root_before_a_port_that_requires_the_gems
    out, err, status = run_port('. .venv/bin/activate && bundle exec ruby -rpytorch_parity "$PORT"',
                                chdir: Hymenoptera::PythonReference::ROOT)
    assert status.success?, err
    assert_equal expected, out
  end

  def test_another_project_loads_it_through_its_gemspec
    project = File.join(tmpdir, "project")
    Dir.mkdir(project)
    File.write(File.join(project, "Gemfile"), <<~GEMFILE)
      source "https://rubygems.org"
      gem "pytorch_parity", path: #{File.join(Hymenoptera::PythonReference::ROOT, "ruby_port").inspect}
    GEMFILE
    env = {"BUNDLE_GEMFILE" => File.join(project, "Gemfile"), "BUNDLE_PATH" => Bundler.settings[:path]}
    out, err, status = run_port('bundle exec ruby "$PORT"', chdir: project, env: env, first_lines: "require \"pytorch_parity\"\n")
    assert status.success?, err
    assert_equal expected, out
  end
end
