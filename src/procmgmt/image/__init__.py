"""Multi-process OCI images: ``procmgmt image`` puts a rendered generation, the manager
that runs it and everything they execute into one image whose PID 1 is that manager.

The image is an OCI image layout written as a tar file by this package alone
(tarfile, hashlib, JSON: no daemon, no registry), byte for byte the same for the
same input. The modules each do one job: :mod:`.tree` is the image's file tree,
:mod:`.roots` says what the model and its files name, :mod:`.closure` follows
that to every host file they need, :mod:`.accounts` writes
``/etc/passwd`` and ``/etc/group``, :mod:`.generation` lays out the rendered
files, :mod:`.managers` says how each manager runs as PID 1, :mod:`.layer` and
:mod:`.oci` write the layers and the layout, :mod:`.build` puts them together.
"""
