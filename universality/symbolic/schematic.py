def schematic_proof():
    return []
