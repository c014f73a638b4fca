from setuptools import find_packages, setup

setup(
    name="minidnn",
    version="0.1.0",
    description="A small deep-learning engine with hand-written backprop on NumPy/CuPy, "
                "reproducing Gu & Rigazio (2014) on adversarial robustness",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["minidnn", "minidnn.*"]),
    python_requires=">=3.9",
    install_requires=["numpy>=1.22"],
    extras_require={
        # Prebuilt CuPy wheel (CUDA 12.x); use cupy-cuda13x on a CUDA 13 machine. Never the source package.
        "gpu": ["cupy-cuda12x"],
        "plot": ["matplotlib"],
        "progress": ["tqdm"],
        "attacks": ["scipy"],
        "test": ["pytest", "hypothesis", "scipy", "matplotlib"],
    },
    entry_points={"console_scripts": ["minidnn=minidnn.cli:main"]},
)
