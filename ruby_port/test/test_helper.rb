# frozen_string_literal: true

# Loaded by every test file: one thread unless HYMENOPTERA_THREADS says otherwise (the tests are
# small and the machine is shared), then the port.
require_relative "../lib/hymenoptera/python_reference"
ENV["BUNDLE_GEMFILE"] ||= File.join(Hymenoptera::PythonReference::ROOT, "Gemfile")
ENV["HYMENOPTERA_THREADS"] ||= "1"
require "bundler/setup"
require_relative "../lib/hymenoptera/threads"
Hymenoptera::Threads.configure unless defined?(Torch::Tensor)
require_relative "../lib/hymenoptera"
require "minitest/autorun"
require "open3"
require "tmpdir"

module Hymenoptera
  # Helpers shared by the tests: temporary folders, small images, running a bin/ script.
  module TestSupport
    PORT = File.expand_path("..", __dir__)

    def tmpdir
      @tmpdir ||= Dir.mktmpdir("hymenoptera-test")
    end

    def teardown
      FileUtils.rm_rf(@tmpdir) if @tmpdir
      super
    end

    # A width x height JPEG (or PNG) of smooth colours, written to path.
    def write_image(path, width: 40, height: 30, bands: 3, interpretation: nil)
      FileUtils.mkdir_p(File.dirname(path))
      image = (Vips::Image.xyz(width, height) * [3, 5]).bandjoin(Vips::Image.grey(width, height) * 255)
      image = image.extract_band(0, n: [bands, 3].min)
      image = image.bandjoin(Vips::Image.black(width, height) + 77) while image.bands < bands
      image = image.cast(:uchar)
      image = image.copy(interpretation: interpretation) if interpretation
      image.write_to_file(path)
      path
    end

    # A hymenoptera-style tree: root/{train,val}/{ants,bees}/N.jpg
    def write_data_dir(root, per_class: 2)
      %w[train val].product(%w[ants bees]).each do |split, name|
        per_class.times { |k| write_image(File.join(root, split, name, "#{k}.jpg"), width: 40 + k, height: 30) }
      end
      root
    end

    # Runs ruby_port/bin/SCRIPT; [stdout, stderr, exit status].
    def run_bin(script, *args, chdir: tmpdir)
      Open3.capture3({"HYMENOPTERA_THREADS" => "1"}, RbConfig.ruby, File.join(PORT, "bin", script), *args.map(&:to_s),
                     chdir: chdir)
    end
  end
end
