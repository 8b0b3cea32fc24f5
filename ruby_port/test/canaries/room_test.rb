# frozen_string_literal: true

require_relative "canary"

module Hymenoptera
  # The fixes room (ruby_port/lib/pytorch_parity/{torch,torchvision}/) holds fixes that state themselves:
  # each file's header says what it changes, why and how to show it, or which fix it is part of; each fix
  # has a canary; pytorch_parity.rb loads them all, and the image stack they work on (layout_test.rb); the
  # README's table is made from the headers.
  class FixesRoomTest < Minitest::Test
    FIXES = Fix.all.reject(&:part_of).freeze

    def test_every_file_states_what_it_fixes_or_what_it_is_part_of
      Fix.all.each do |fix|
        if fix.part_of
          owner = FIXES.find { |other| other.name == fix.part_of }
          assert owner, "#{fix.path}: 'Part of: #{fix.part_of}' names no fix in the room"
        else
          missing = %w[Fix Bug Reproduction Upstream\ gives].reject { |key| fix.fields[key] }
          assert_empty missing, "#{fix.path}: its header lacks #{missing.join(', ')} (see ruby_port/test/canaries/fix.rb)"
          assert_match(/\A#{Regexp.escape(fix.gem)} [\d.]+, \S+ \(lib\/\S+\.rb\)\z/, fix.fields["Fix"], "#{fix.path}: 'Fix:'")
        end
      end
    end

    # The upstream file each header names is in the installed gem (so the reproduction is of what runs).
    def test_every_fix_names_a_file_of_the_installed_gem
      gems = {"torch.rb" => "torch-rb", "torchvision-ruby" => "torchvision"}
      FIXES.each do |fix|
        upstream = fix.fields.fetch("Fix")[/\((lib\/\S+\.rb)\)\z/, 1]
        spec = Gem.loaded_specs.fetch(gems.fetch(fix.gem))
        assert File.file?(File.join(spec.full_gem_path, upstream.to_s)),
               "#{fix.path} replaces #{upstream}, which #{spec.full_name} does not have: update its header"
      end
    end

    def test_every_fix_has_a_canary
      FIXES.each do |fix|
        canary = File.join(__dir__, fix.name.sub(/\.rb\z/, "_test.rb"))
        assert File.file?(canary), "#{fix.path} has no canary: write #{canary.delete_prefix("#{Fix::PORT}/../")}"
      end
    end

    def test_pytorch_parity_rb_loads_every_file_of_the_room
      loaded = File.read(File.join(Fix::PORT, "lib/pytorch_parity.rb")).scan(/require_relative "pytorch_parity\/(\S+)"/).flatten
      library = Dir.glob("**/*.rb", base: Fix::ROOM).reject { |name| Fix.matches?(name, Fix::LOADED_ON_ITS_OWN) }
      assert_equal library.map { |name| name.delete_suffix(".rb") }.sort, loaded.sort
    end

    # Required before the gems, then twice more (once by path, once every file it loaded loaded
    # again), the library changes each class once: one forward counts one batch.
    def test_loading_twice_or_before_the_gems_changes_nothing_more
      script = <<~RUBY
        require "pytorch_parity"
        require File.expand_path("lib/pytorch_parity.rb", ARGV[0])
        $LOADED_FEATURES.grep(%r{/lib/pytorch_parity/}).each { |file| load file }
        require "torch"
        require "torchvision"
        bn = Torch::NN::BatchNorm2d.new(1)
        bn.call(Torch.ones(2, 1, 1, 1))
        prepended = Torch::NN::BatchNorm2d.ancestors.take_while { |mod| mod != Torch::NN::BatchNorm2d }
        print [bn.num_batches_tracked.item, prepended.size].inspect
      RUBY
      out, err, status = Open3.capture3({"OMP_NUM_THREADS" => "1"}, RbConfig.ruby, "-rbundler/setup", "-e", script, Fix::PORT)
      assert status.success?, err
      assert_equal "[1, 1]", out
    end

    def test_the_readme_table_is_made_from_the_headers
      assert_equal Fix.readme_table, Fix.readme_section,
                   "README.md's table of fixes is not the headers': run `ruby ruby_port/test/canaries/fix.rb`"
    end
  end
end
