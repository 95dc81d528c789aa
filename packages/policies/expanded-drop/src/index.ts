/** moe-route policy: expanded-drop */
export {}
