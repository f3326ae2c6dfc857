"""Installation of mmeformer.

Like the OpenMMLab packages, mmeformer ships ``configs/``, ``tools/`` and
``model-index.yml`` under ``mmeformer/.mim`` so that ``mim search/train/test
mmeformer`` and ``_base_ = 'mmeformer::<task>/<file>.py'`` find them. Both
mmengine and MIM look in ``<location>/mmeformer/.mim``, ``<location>`` being
where the installed distribution's metadata lives:

- a wheel (``pip install .``) has them in site-packages;
- an editable install must be in develop mode, which makes the checkout the
  location: ``pip install --no-use-pep517 -e .`` or ``mim install -e .``
  with setuptools<80 (and pip<25.3), as ``tools/setup_env.sh`` does. A PEP
  660 editable install (setuptools>=80) leaves the location in site-packages,
  where no ``mmeformer/`` exists. A pyproject.toml would make pip use PEP 660
  too, so this project has none.
"""
import os
import os.path as osp
import shutil
import sys
import warnings
from setuptools import find_packages, setup

ROOT = osp.dirname(osp.abspath(__file__))
MIM_FILES = ('configs', 'tools', 'model-index.yml')


def readme() -> str:
    with open(osp.join(ROOT, 'README.md'), encoding='utf-8') as f:
        return f.read()


def get_version() -> str:
    scope: dict = {}
    with open(
            osp.join(ROOT, 'mmeformer', 'version.py'), encoding='utf-8') as f:
        exec(compile(f.read(), 'version.py', 'exec'), scope)
    return scope['__version__']


def parse_requirements(name: str) -> list:
    """Read ``requirements/<name>.txt`` without comments and blank lines."""
    with open(osp.join(ROOT, 'requirements', f'{name}.txt')) as f:
        lines = (line.split('#', 1)[0].strip() for line in f)
        return [line for line in lines if line]


def add_mim_extension() -> None:
    """Link configs, tools and the model index into ``mmeformer/.mim``.

    Links serve both install kinds: a develop-mode install sees edits without
    reinstalling, and builds (wheel, sdist) copy the files they point to.
    Where links cannot be made, the files are copied. Nothing is replaced by
    a source that does not exist: an unpacked sdist has ``.mim`` only.
    """
    building = ('develop', 'sdist', 'build', 'build_py')
    if not any(
            a in building or a.startswith(('editable', 'bdist'))
            for a in sys.argv):
        return

    mim_root = osp.join(ROOT, 'mmeformer', '.mim')
    os.makedirs(mim_root, exist_ok=True)
    for name in MIM_FILES:
        src = osp.join(ROOT, name)
        dst = osp.join(mim_root, name)
        if not osp.exists(src):
            continue
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        try:
            os.symlink(osp.relpath(src, mim_root), dst)
            continue
        except OSError:
            warnings.warn(f'Cannot link {dst}; copying it instead.')
        if osp.isdir(src):
            shutil.copytree(src, dst)
        else:
            shutil.copyfile(src, dst)


if __name__ == '__main__':
    add_mim_extension()
    setup(
        name='mmeformer',
        version=get_version(),
        description='EfficientFormer V1 and V2 for MMPretrain, MMDetection '
        'and MMSegmentation',
        long_description=readme(),
        long_description_content_type='text/markdown',
        keywords='computer vision, efficientformer, openmmlab',
        packages=find_packages(exclude=('configs', 'tools', 'tests')),
        include_package_data=True,
        package_data={'mmeformer': ['.mim/**/*']},
        python_requires='>=3.8',
        license='Apache License 2.0',
        classifiers=[
            'Programming Language :: Python :: 3',
            'Topic :: Scientific/Engineering :: Artificial Intelligence',
        ],
        install_requires=parse_requirements('mminstall') +
        parse_requirements('runtime'),
        extras_require={
            'tests': parse_requirements('tests'),
            'mim': parse_requirements('mminstall'),
            'deploy': parse_requirements('deploy'),
        },
        zip_safe=False)
