# frozen_string_literal: true

require_relative "canary"

module Hymenoptera
  # The fixes room (ruby_port/lib/hymenoptera/fixes/) holds fixes that state themselves: each file's
  # header says what it replaces, why and how to show it, or which fix it is part of; each fix has a
  # canary; fixes.rb loads them all; the README's table is made from the headers.
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

    def test_fixes_rb_loads_every_file_of_the_room
      loaded = File.read(File.join(Fix::PORT, "lib/hymenoptera/fixes.rb")).scan(/require_relative "fixes\/(\S+)"/).flatten
      assert_equal Fix.all.map { |fix| fix.name.delete_suffix(".rb") }.sort, loaded.sort
    end

    def test_the_readme_table_is_made_from_the_headers
      assert_equal Fix.readme_table, Fix.readme_section,
                   "README.md's table of fixes is not the headers': run `ruby ruby_port/test/canaries/fix.rb`"
    end
  end
end
