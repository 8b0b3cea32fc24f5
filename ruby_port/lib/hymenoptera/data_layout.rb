# frozen_string_literal: true

require_relative "errors"

module Hymenoptera
  # What a data dir must be, checked without LibTorch (mirrors reference_py/data_layout.py):
  # hymenoptera_data's layout (train/ and val/, one folder of images per class, the same classes in both)
  # and the files torchvision's ImageFolder would take from it. No torch and no torchvision here, so that
  # the trainers refuse a data dir before LibTorch loads; Data loads the images themselves.
  module DataLayout
    SPLITS = %w[train val].freeze
    LAYOUT_HINT = "a data dir holds train/ and val/, each with one folder of images per class " \
                  "(hymenoptera_data: train/ants, train/bees, val/ants, val/bees)"
    # torchvision-ruby 0.3's ImageFolder::IMG_EXTENSIONS (torchvision 0.14's datasets.folder.IMG_EXTENSIONS too),
    # written out as requiring torchvision loads LibTorch; test/data_layout_test.rb and parity/test_image_rule.py
    # keep it equal to both.
    IMG_EXTENSIONS = %w[.jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp].freeze

    module_function

    # Every entry below folder (sorted, depth first), refusing what would make the two sides see
    # different data: a name that is not UTF-8, a symbolic link to a folder (it may loop), a link to nothing.
    def tree_entries(folder, &block)
      return enum_for(:tree_entries, folder) unless block

      Dir.children(folder).sort_by(&:b).each do |name|
        path = File.join(folder, name)
        unless name.dup.force_encoding(Encoding::UTF_8).valid_encoding?
          raise UserError, "#{Errors.display(path)}: the name is not valid UTF-8; rename it " \
                           "(the two sides would sort and show it differently)"
        end
        if File.symlink?(path)
          unless File.exist?(path)
            raise UserError, "#{Errors.display(path)} is a symbolic link to nothing (#{Errors.display(File.readlink(path))}); " \
                             "remove it or make it point to an image"
          end
          if File.directory?(path)
            raise UserError, "#{Errors.display(path)} is a symbolic link to a folder; the data dir's folders must be " \
                             "real folders (a link can loop): replace it with a copy of the folder"
          end
        end
        yield path
        tree_entries(path, &block) if File.directory?(path) && !File.symlink?(path)
      end
    end

    # What File.stat says a path is, for the files that are not images (a link is followed).
    SPECIAL_FILES = {"fifo" => "a named pipe (FIFO)", "socket" => "a socket", "characterSpecial" => "a character device",
                     "blockSpecial" => "a block device"}.freeze

    # Refuses a path ImageFolder would take (by its name) that is not a regular file: opening a named pipe waits
    # for a writer for ever, a socket cannot be opened, a device is read as if it were the image.
    def refuse_special_file(path)
      kind = SPECIAL_FILES[File.stat(path).ftype]
      return unless kind

      kind = "a symbolic link to #{kind} (#{Errors.display(File.readlink(path))})" if File.symlink?(path)
      raise UserError, "#{Errors.display(path)} is #{kind}, not an image file; ImageFolder takes every name with " \
                       "an image extension, and reading this one would hang or fail: remove it or rename it"
    end

    # The files ImageFolder takes from a class folder, in its order: as torchvision's make_dataset, every entry below
    # the folder (hidden ones and those of nested and hidden folders too) that is not a folder and whose name ends in
    # an image extension, folder by folder (sorted by path), each folder's sorted by name. One that is not a regular
    # file, nor a link to one, is refused (refuse_special_file).
    def image_files(folder)
      paths = tree_entries(folder).select { |path| !File.directory?(path) && path.downcase.end_with?(*IMG_EXTENSIONS) }
                                  .sort_by { |path| [File.dirname(path), File.basename(path)] }
      paths.each { |path| refuse_special_file(path) }
    end

    # The images ImageFolder takes from train/ or val/: each class folder's image_files, classes sorted.
    def split_images(folder)
      Dir.children(folder).select { |name| File.directory?(File.join(folder, name)) }.sort
         .flat_map { |name| image_files(File.join(folder, name)) }
    end

    # The class names, once train/ and val/ each hold the same class folders, none of them empty.
    def check_layout(data_dir)
      unless File.directory?(data_dir)
        problem = File.exist?(data_dir) ? "is not a folder" : "not found"
        raise UserError, "data dir #{data_dir} #{problem}; pass --data-dir a folder in hymenoptera_data's layout " \
                         "(python reference_py/download.py fetches it), or leave --data-dir out to use the stand-in"
      end
      class_names = SPLITS.to_h do |split|
        folder = File.join(data_dir, split)
        raise UserError, "#{folder} not found: #{LAYOUT_HINT}" unless File.directory?(folder)

        names = tree_entries(folder).select { |path| File.dirname(path) == folder && File.directory?(path) }
                                    .map { |path| File.basename(path) }.sort
        raise UserError, "#{folder} has no class folders: #{LAYOUT_HINT}" if names.empty?

        names.each do |name|
          next if image_files(File.join(folder, name)).any?

          raise UserError, "#{File.join(folder, name)} has no images (#{IMG_EXTENSIONS.join(" ")}); " \
                           "add images to it or remove the folder"
        end
        [split, names]
      end
      if class_names["train"] != class_names["val"]
        raise UserError, "#{data_dir}: train/ has the classes #{class_list(class_names["train"])} but val/ has " \
                         "#{class_list(class_names["val"])}; give both the same class folders"
      end
      if class_names["train"].size < 2
        raise UserError, "#{data_dir}: only one class (#{class_names["train"][0]}); a classifier needs two or more"
      end
      class_names["train"]
    end

    # Class names as the messages of both sides show them: ants, bees.
    def class_list(names)
      names.join(", ")
    end
  end
end
